"""Payment providers: the interface every provider implements, and the built-in ones."""
