"""Request and response models of the payments plugin, by area."""
