"""Typed events: the outbox, handler subscriptions and delivery after commit."""
