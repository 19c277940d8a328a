"""Background jobs: run records, schedules, the embedded and the distributed runners."""
