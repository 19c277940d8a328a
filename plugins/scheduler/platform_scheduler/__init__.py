"""platform_scheduler: lab device booking, approvals and safe power control."""
