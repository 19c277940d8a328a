"""Business logic of the pricing plugin, one module per area; no FastAPI here."""
