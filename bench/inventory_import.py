"""Import of 50,000 devices from CSV on SQLite, and the peak memory of exporting them.

The import goes through ``platform_inventory.transfer.import_devices`` (what the API and the
CLI call), in one transaction, with every row validated first. The export streams CSV from
``export_devices``; peak traced memory (tracemalloc) is printed for 10,000 and 50,000
devices: flat means about the same for both. Targets: import under 30 s. Figures only.
Run: ``.venv/bin/python bench/inventory_import.py``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import tracemalloc
from pathlib import Path

from _common import header, make_config, row
from platform_inventory import service, transfer

from platform_core.app import boot
from platform_core.migrate import upgrade

DEVICES = 50_000


def csv_text(count: int, offset: int = 0) -> bytes:
    """A CSV of ``count`` devices spread over 40 racks (1U each, unique units)."""
    lines = ["name,manufacturer,device_type,status,serial,location,rack,position,tags,cf_owner"]
    for i in range(offset, offset + count):
        rack, unit = divmod(i, 42)
        position = unit + 1 if rack < 40 else ""
        rack_name = f"r{rack}" if rack < 40 else ""
        location = "room" if rack_name else ""
        lines.append(
            f"dev{i:06},Acme,S1,active,SN{i},{location},{rack_name},{position},t{i % 5},o{i % 9}"
        )
    return ("\n".join(lines) + "\n").encode()


async def main() -> None:
    """Set up a catalogue, import, then export twice measuring memory."""
    with tempfile.TemporaryDirectory() as tmp:
        ctx = boot(make_config(Path(tmp), enabled=["inventory"]))
        await upgrade(ctx.db, ctx.state["migration_targets"])
        audit = service.Audit("bench", "bench-import")
        async with ctx.db.session() as s:
            m = await service.create_manufacturer(s, "Acme", audit)
            await service.create_device_type(
                s,
                {
                    "manufacturer_id": m.id,
                    "model": "S1",
                    "u_height": 1,
                    "custom_fields": [{"name": "owner", "type": "string"}],
                },
                audit,
            )
            loc = await service.create_location(s, {"name": "room", "kind": "room"}, audit)
            for r in range(40):
                await service.create_rack(s, {"name": f"r{r}", "location_id": loc.id}, audit)
        header(f"inventory import of {DEVICES:,} devices from CSV, SQLite")
        content = csv_text(DEVICES)
        row("file size", f"{len(content) / 1e6:.1f} MB")
        t0 = time.perf_counter()
        async with ctx.db.session() as s:
            result = await transfer.import_devices(
                s, content, "text/csv", audit=audit, max_bytes=10**9
            )
        row("import (validate + write + commit)", f"{time.perf_counter() - t0:.1f} s")
        row("created", str(result.created))
        header("export memory (tracemalloc peak), CSV streamed in batches of 1,000")
        for limit in (10_000, 50_000):
            tracemalloc.start()
            t0, size, seen = time.perf_counter(), 0, 0
            async for chunk in transfer.export_devices(ctx.db.session, "csv"):
                size += len(chunk)
                seen += chunk.count("\n")
                if seen > limit:
                    break
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            elapsed = time.perf_counter() - t0
            row(
                f"first {limit:,} devices",
                f"peak {peak / 1e6:.1f} MB, {elapsed:.1f} s, {size / 1e6:.1f} MB out",
            )
        await ctx.db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
