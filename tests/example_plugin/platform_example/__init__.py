"""platform_example: an example third-party plugin (personal notes) using every hook."""
