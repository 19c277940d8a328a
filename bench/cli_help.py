"""CLI responsiveness: wall time of ``platformctl --help`` against ``python -c "import typer"``.

Both are run as fresh processes ``--runs`` times each (interleaved, after one warm-up run
of each so the OS file cache is hot); the medians are compared. ``python -c pass`` is shown
too, as the interpreter's own floor.

Target: ``platformctl --help`` under 2x the time of importing typer, which is what a CLI that
imports its plugins, FastAPI and SQLAlchemy lazily (only in the commands that need them)
achieves. Figures only: nothing is asserted. When the CLI is still a stub (no output), the
figure is printed with a note.

Run: ``.venv/bin/python bench/cli_help.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import header, median, row

TARGET_RATIO = 2.0


def platformctl_path() -> str | None:
    """The ``platformctl`` script beside this interpreter (the venv's), else on ``PATH``."""
    beside = Path(sys.executable).parent / "platformctl"
    if beside.exists():
        return str(beside)
    return shutil.which("platformctl")


def run_once(argv: list[str]) -> tuple[float, int, str]:
    """Run ``argv``; ``(wall ms, exit code, stdout+stderr)``."""
    start = time.perf_counter()
    env = os.environ | {"COLUMNS": "100", "NO_COLOR": "1"}
    proc = subprocess.run(
        argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False, env=env
    )
    elapsed = (time.perf_counter() - start) * 1000
    return elapsed, proc.returncode, proc.stdout + proc.stderr


def main() -> None:
    """Time both commands and print the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (15)")
    args = parser.parse_args()
    ctl = platformctl_path()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import typer"': [sys.executable, "-c", "import typer"],
    }
    if ctl is not None:
        commands["platformctl --help"] = [ctl, "--help"]
    times: dict[str, list[float]] = {name: [] for name in commands}
    outputs: dict[str, tuple[int, str]] = {}
    for name, argv in commands.items():  # warm-up, not counted
        _, code, out = run_once(argv)
        outputs[name] = (code, out)
    for _ in range(args.runs):
        for name, argv in commands.items():
            times[name].append(run_once(argv)[0])

    header(f"CLI start-up: median wall time of {args.runs} runs each")
    for name, values in times.items():
        row(name, f"{median(values):8.1f} ms   (min {min(values):.1f})")
    if ctl is None:
        print("  platformctl is not installed in this environment: no ratio")
        return
    code, out = outputs["platformctl --help"]
    if code != 0:
        print(f"  note: platformctl --help exited {code}: {out.strip()[:200]!r}")
    elif not out.strip():
        print("  note: platformctl --help printed nothing: the CLI is still a stub")
    ratio = median(times["platformctl --help"]) / median(times['python -c "import typer"'])
    verdict = "within" if ratio < TARGET_RATIO else "OVER"
    header("result")
    row(
        "platformctl --help / import typer",
        f"{ratio:8.2f}x  ({verdict} target < {TARGET_RATIO:g}x)",
    )


if __name__ == "__main__":
    main()
