"""platformctl: the admin CLI."""
