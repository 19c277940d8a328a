"""What other plugins may use of the inventory (declare ``requires = ["inventory>=0.1"]``).

This module is the inventory's only supported surface for other plugins; everything else in
``platform_inventory`` may change without notice (an import-linter contract enforces it).
"""

from __future__ import annotations

from platform_inventory.models import Device
from platform_inventory.service.connections import topology
from platform_inventory.service.devices import DeviceFilters, filtered_devices, get_device

__all__ = ["Device", "DeviceFilters", "filtered_devices", "get_device", "topology"]
