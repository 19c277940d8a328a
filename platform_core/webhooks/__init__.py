"""Outbound webhooks: registrations, signed deliveries with retries, the delivery log."""
