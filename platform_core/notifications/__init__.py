"""The user inbox: notifications produced from events by the plugins' rules."""
