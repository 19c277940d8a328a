"""Business logic of the payments plugin, by area; no FastAPI here."""
