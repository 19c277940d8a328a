"""Internal plugins: the core's own features, registered through the public hooks."""
