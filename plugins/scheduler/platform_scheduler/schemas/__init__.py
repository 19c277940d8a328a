"""Request and response models of the scheduler plugin's API, one module per area."""
