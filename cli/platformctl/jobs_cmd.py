"""``platformctl jobs``: list jobs, run one now (queued or in the foreground), show history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from platformctl.errors import CliError
from platformctl.output import note, print_rows, say

if TYPE_CHECKING:
    from platform_core.context import PlatformContext
    from platform_core.jobs.execute import Outcome

app = typer.Typer(help="List, run and inspect background jobs.", no_args_is_help=True)

JSON_OPTION = typer.Option("--json", help="Print JSON instead of a table.")


@app.command("list")
def list_jobs(as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """Every job of the enabled plugins: schedule, next run and the last run's state."""
    from platform_core.jobs import service
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()
    jobs = run(ctx, service.overview(ctx))
    print_rows(
        ["name", "schedule", "next_run", "last_state", "last_run", "description"],
        [
            (j.name, j.schedule, j.next_run, j.last_state, j.last_run_at, j.description)
            for j in jobs
        ],
        as_json=as_json,
    )


async def _foreground(ctx: PlatformContext, name: str) -> Outcome:
    from platform_core.jobs import service
    from platform_core.jobs.execute import execute

    service.get_spec(ctx, name)
    await ctx.plugins.acall("platform_startup", ctx=ctx)
    try:
        worker = service.new_worker_id("cli")
        run = await service.start_now(ctx, name, worker)
        note(f"running {name} (run {run.id}) in the foreground")
        return await execute(ctx, run, worker, retry=False)
    finally:
        await ctx.plugins.acall("platform_shutdown", ctx=ctx, reverse=True, isolate=False)


async def _enqueue(ctx: PlatformContext, name: str) -> tuple[int, bool | None]:
    from platform_core.jobs import service

    run = await service.enqueue(ctx, name, trigger="manual")
    sent = None
    if ctx.config.core.jobs.broker_url:
        from platform_core.jobs.distributed import send_runs

        sent = bool(await send_runs(ctx, [run.id]))
    return run.id, sent


@app.command("run")
def run_job(
    name: Annotated[str, typer.Argument(help="The job: <plugin>.<job>.")],
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Run it here, in the foreground, and print the result (one attempt)."
        ),
    ] = False,
) -> None:
    """Enqueue a run of NAME now and print its id, or run it in the foreground with --wait."""
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()
    if wait:
        outcome = run(ctx, _foreground(ctx, name))
        if outcome.result is not None:
            say(outcome.result)
        if outcome.state != "succeeded":
            raise CliError(f"run {outcome.run_id} of {name} {outcome.state}: {outcome.error}")
        note(f"run {outcome.run_id} of {name} succeeded in {outcome.duration:.2f}s")
        return
    run_id, sent = run(ctx, _enqueue(ctx, name))
    say(str(run_id))
    if sent is False:
        note(f"queued run {run_id} of {name}; the broker is unreachable, the scheduler sends it")
    else:
        note(f"queued run {run_id} of {name}")


@app.command("history")
def history(
    name: Annotated[str | None, typer.Argument(help="Only this job's runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10000)] = 20,
    state: Annotated[
        str | None, typer.Option("--state", help="Only runs in this state (failed, lost, ...).")
    ] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Recent runs, newest first: one row per attempt, with state, times and error."""
    from platform_core.jobs import service
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()
    runs = run(ctx, service.list_runs(ctx, job=name, state=state, limit=limit))
    if name is not None and name not in ctx.jobs and not runs:
        service.get_spec(ctx, name)  # raises: unknown job
    rows: list[tuple[Any, ...]] = [
        (
            r.id,
            r.job,
            r.scheduled_for,
            r.attempt,
            r.trigger,
            r.state,
            r.started_at,
            r.finished_at,
            r.worker,
            r.error,
        )
        for r in runs
    ]
    columns = [
        "id",
        "job",
        "scheduled_for",
        "attempt",
        "trigger",
        "state",
        "started",
        "finished",
        "worker",
        "error",
    ]
    print_rows(columns, rows, as_json=as_json)
