"""The first run as the README tells it: the sample prices import, state kept private."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from platform_core.config import Config, CoreSettings, secret_key
from platform_core.db import Database

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "docs" / "examples" / "prices.csv"


@pytest.fixture
def platform_plugins():
    return ["pricing"]


def test_the_readme_tour_uses_the_shipped_sample():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "platformctl pricing import-prices docs/examples/prices.csv --client acme" in readme
    assert SAMPLE.is_file()


async def test_the_sample_prices_import_as_the_readme_says(platform, run_cli):
    created = await run_cli("pricing", "clients", "create", "acme")
    assert created.exit_code == 0, created.output
    result = await run_cli("pricing", "import-prices", str(SAMPLE), "--client", "acme")
    assert result.exit_code == 0, result.output
    rows = len(SAMPLE.read_text(encoding="utf-8").splitlines()) - 1
    assert str(rows) in result.output
    again = await run_cli("pricing", "savings", "--client", "acme", "--month", "2026-11")
    assert again.exit_code == 0, again.output


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_sqlite_database_and_its_directory_are_private(tmp_path):
    path = tmp_path / "var" / "platform.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.session() as session:
            from sqlalchemy import text

            await session.execute(text("CREATE TABLE t (x INTEGER)"))
            await session.execute(text("INSERT INTO t VALUES (1)"))
        assert _mode(path.parent) == 0o700
        assert _mode(path) == 0o600
        for extra in path.parent.glob("platform.db-*"):
            assert _mode(extra) & 0o077 == 0, extra
    finally:
        await db.dispose()


def test_the_generated_secret_key_and_var_are_private(tmp_path):
    cfg = Config(path=tmp_path / "plugins.toml", core=CoreSettings())
    secret_key(cfg)
    assert _mode(tmp_path / "var") == 0o700
    assert _mode(tmp_path / "var" / "secret.key") == 0o600


def test_backups_are_ignored_by_git():
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "backup/" in ignored or "/backup/" in ignored


def test_the_backup_snippet_of_the_docs_works_on_a_fresh_checkout(tmp_path):
    import re
    import sqlite3
    import subprocess
    import sys

    docs = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    backups = docs.split("## 12. Backups", 1)[1]
    snippet = re.search(r"\$ python - <<'EOF'\n(.*?)\nEOF\n", backups, re.S).group(1)
    (tmp_path / "var").mkdir()
    with sqlite3.connect(tmp_path / "var" / "platform.db") as db:
        db.execute("CREATE TABLE t (x INTEGER)")
        db.execute("INSERT INTO t VALUES (42)")
    subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, check=True)
    [copy] = (tmp_path / "backup").iterdir()
    assert _mode(tmp_path / "backup") == 0o700
    assert _mode(copy) == 0o600
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT x FROM t").fetchall() == [(42,)]
