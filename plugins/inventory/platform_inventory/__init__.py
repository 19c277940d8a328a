"""platform_inventory: the inventory plugin (devices, racks, connections, history)."""
