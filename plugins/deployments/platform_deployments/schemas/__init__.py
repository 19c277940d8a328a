"""Request and response models of the deployments API, by area."""
