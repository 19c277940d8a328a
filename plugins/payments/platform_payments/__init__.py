"""Payments plugin: orders, providers (PayPal, manual, others through a hook), refunds, webhooks."""
