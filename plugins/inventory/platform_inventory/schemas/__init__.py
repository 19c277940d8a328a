"""Request and response models of the inventory plugin's API, one module per area."""
