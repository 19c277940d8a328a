"""Request and response models of the pricing API, one module per area."""
