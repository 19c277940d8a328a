"""``platformctl jobs``: list, run (queued and --wait), history; worker and scheduler guards."""

from __future__ import annotations

import json
import types
from datetime import timedelta

import pytest

from platform_core import JobSpec, hookimpl


async def _hello(run) -> dict[str, object]:
    return {"hello": "world", "attempt": run.attempt}


async def _broken() -> None:
    raise RuntimeError("disk on fire")


async def _tick() -> None:
    return None


def _jobs_module() -> types.ModuleType:
    module = types.ModuleType("platformctl_tests_jobs")

    @hookimpl
    def platform_jobs() -> list[JobSpec]:
        return [
            JobSpec("hello", _hello, description="greets"),
            JobSpec("broken", _broken, retries=3),
            JobSpec("tick", _tick, every=timedelta(minutes=5)),
        ]

    module.platform_jobs = platform_jobs  # type: ignore[attr-defined]
    return module


@pytest.fixture
def jobs_enabled(fake_plugins, enable, migrated) -> None:
    """The ``demo`` plugin with three jobs, enabled, on a migrated database."""
    fake_plugins("demo", _jobs_module())
    enable("demo")


def test_jobs_list_shows_schedule_and_next_run(cli, jobs_enabled):
    result = cli("jobs", "list", "--json")
    assert result.exit_code == 0, result.output
    jobs = {j["name"]: j for j in json.loads(result.stdout)}
    assert jobs["demo.tick"]["schedule"] == "every 0:05:00"
    assert jobs["demo.tick"]["next_run"].endswith(("0:00+00:00", "5:00+00:00"))
    assert jobs["demo.hello"]["schedule"] == "on demand"
    assert jobs["demo.hello"]["next_run"] is None
    assert jobs["demo.hello"]["last_state"] is None


def test_jobs_run_enqueues_and_prints_the_run_id(cli, jobs_enabled):
    result = cli("jobs", "run", "demo.hello")
    assert result.exit_code == 0, result.output
    run_id = int(result.stdout.strip())
    assert f"queued run {run_id} of demo.hello" in result.stderr
    history = json.loads(cli("jobs", "history", "demo.hello", "--json").stdout)
    assert [(h["id"], h["state"], h["trigger"]) for h in history] == [(run_id, "queued", "manual")]


def test_jobs_run_wait_runs_in_the_foreground_and_prints_the_result(cli, jobs_enabled):
    result = cli("jobs", "run", "demo.hello", "--wait")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"hello": "world", "attempt": 1}
    assert "succeeded" in result.stderr
    history = json.loads(cli("jobs", "history", "--json").stdout)
    assert history[0]["state"] == "succeeded"
    assert history[0]["worker"].startswith("cli:")


def test_jobs_run_wait_failure_exits_non_zero_without_retry(cli, jobs_enabled):
    result = cli("jobs", "run", "demo.broken", "--wait")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("failed: RuntimeError: disk on fire")
    assert result.stderr.count("error:") == 1
    history = json.loads(cli("jobs", "history", "demo.broken", "--json").stdout)
    assert [(h["attempt"], h["state"]) for h in history] == [(1, "failed")]


def test_jobs_history_limit_and_state_filter(cli, jobs_enabled):
    for _ in range(3):
        cli("jobs", "run", "demo.hello")
    cli("jobs", "run", "demo.broken", "--wait")
    limited = json.loads(cli("jobs", "history", "--limit", "2", "--json").stdout)
    assert len(limited) == 2
    assert limited[0]["id"] > limited[1]["id"]
    failed = json.loads(cli("jobs", "history", "--state", "failed", "--json").stdout)
    assert [h["job"] for h in failed] == ["demo.broken"]


@pytest.mark.parametrize(
    "args",
    [("run", "demo.nope"), ("run", "demo.nope", "--wait"), ("history", "demo.nope")],
)
def test_jobs_unknown_job_fails_with_one_line(cli, jobs_enabled, args):
    result = cli("jobs", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown job 'demo.nope' (known jobs: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_worker_and_scheduler_refuse_without_a_broker(cli, migrated, command):
    result = cli(command)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no broker configured")
    assert result.stderr.count("\n") == 1
