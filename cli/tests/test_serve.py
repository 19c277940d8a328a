"""``platformctl serve``: refusing pending migrations, --migrate, the first-admin hint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest


@pytest.fixture
def uvicorn_calls(monkeypatch) -> list[dict]:
    """Record the server ``serve`` would run instead of serving (its app, host and port);
    logging set-up is recorded too."""
    from platform_core import observability
    from platformctl import serve

    calls: list[dict] = []

    class Recorded:
        def __init__(self, ctx, config) -> None:
            self.config = config

        def run(self) -> None:
            c = self.config
            calls.append({"app": c.app, "host": c.host, "port": c.port})

    monkeypatch.setattr(serve, "draining_server", Recorded)
    monkeypatch.setattr(
        observability,
        "configure_logging",
        lambda fmt, level: calls.append({"logging": (fmt, level)}),
    )
    return calls


def test_serve_refuses_pending_migrations_naming_the_plugins(cli, uvicorn_calls):
    result = cli("serve")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: pending migrations for plugins: core;")
    assert result.stderr.count("\n") == 1
    assert not [c for c in uvicorn_calls if "app" in c]


def test_serve_with_migrate_upgrades_then_serves(cli, uvicorn_calls):
    result = cli("serve", "--migrate", "--host", "0.0.0.0", "--port", "9123")
    assert result.exit_code == 0, result.output
    assert "migrated: core" in result.stderr
    (call,) = [c for c in uvicorn_calls if "app" in c]
    assert (call["host"], call["port"]) == ("0.0.0.0", 9123)
    assert any(r.path == "/healthz" for r in call["app"].routes)
    assert {"logging": ("text", "INFO")} in uvicorn_calls


def test_serve_without_users_prints_how_to_create_the_first_admin(cli, migrated, uvicorn_calls):
    result = cli("serve")
    assert result.exit_code == 0, result.output
    assert "platformctl users create admin --role admin --password-stdin" in result.stderr


def test_serve_with_users_prints_no_first_admin_hint(cli, admin, uvicorn_calls):
    result = cli("serve")
    assert result.exit_code == 0, result.output
    assert "users create" not in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_migrate_answers_healthz_and_shuts_down_on_sigterm(config_file):
    port = _free_port()
    env = {**os.environ, "PLATFORM_CONFIG": str(config_file)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "platformctl", "serve", "--migrate", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code
                break
            except httpx.TransportError:
                time.sleep(0.1)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=15)
    assert status == 200, stderr
    # uvicorn shuts down gracefully (after the drain), and serve exits 0
    assert "Application shutdown complete" in stderr
    assert proc.returncode == 0, stderr
