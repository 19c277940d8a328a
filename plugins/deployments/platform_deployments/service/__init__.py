"""Business logic of the deployments plugin, by area (no FastAPI here)."""
