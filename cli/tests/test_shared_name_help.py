"""``platformctl scheduler --help`` lists the scheduler plugin's commands sharing the name."""

from __future__ import annotations

import pytest


@pytest.fixture
def platform_plugins():
    return ["inventory", "scheduler"]


async def test_core_scheduler_help_lists_the_plugins_commands(platform, run_cli):
    result = await run_cli("scheduler", "--help")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "Enqueue periodic job runs" in text
    assert "The scheduler plugin's commands share this name" in text
    assert "bookings" in text
    listed = await run_cli("scheduler", "bookings", "--help")
    assert listed.exit_code == 0, listed.output
