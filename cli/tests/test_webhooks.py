"""``platformctl webhooks``: the secret alone on stdout, list, remove, test pings, the log."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from platform_core.webhooks.signing import verify_signature


@pytest.fixture(autouse=True)
def allow_loopback_targets(config_file, monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers listen on 127.0.0.1: allow loopback targets, as a local setup would."""
    monkeypatch.setenv("PLATFORM_WEBHOOKS__ALLOW", '["127.0.0.0/8"]')


class Receiver:
    """An HTTP server on 127.0.0.1 answering ``status`` and recording requests."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append((dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        """The receiver's URL."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running receiver, closed after the test."""
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def added(cli, migrated, receiver) -> tuple[int, str]:
    """A webhook for every inventory event: (id, secret)."""
    result = cli("webhooks", "add", receiver.url, "--event", "inventory.*")
    assert result.exit_code == 0, result.output
    listed = json.loads(cli("webhooks", "list", "--json").stdout)
    return listed[0]["id"], result.stdout.strip()


def test_webhooks_add_prints_only_the_secret_on_stdout(cli, migrated, receiver):
    result = cli(
        "webhooks", "add", receiver.url, "-e", "inventory.*", "-e", "pricing.*", "-d", "ops"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("whsec_")
    assert "added webhook 1 (active) for inventory.*, pricing.*" in result.stderr
    assert result.stdout.strip() not in result.stderr


def test_webhooks_list_never_shows_the_secret(cli, added, receiver):
    _, secret = added
    table = cli("webhooks", "list")
    assert table.exit_code == 0
    assert receiver.url in table.stdout and secret not in table.stdout
    [row] = json.loads(cli("webhooks", "list", "--json").stdout)
    assert row["url"] == receiver.url and row["events"] == ["inventory.*"]
    assert secret not in json.dumps(row)


def test_webhooks_add_with_credentials_in_url_fails_with_one_line(cli, migrated):
    result = cli("webhooks", "add", "https://u:p@example.com/", "--event", "*")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "error: url: credentials are not allowed in the URL\n"


def test_webhooks_add_with_ftp_url_or_bad_pattern_fails(cli, migrated):
    result = cli("webhooks", "add", "ftp://example.com/", "--event", "*")
    assert result.stderr == "error: url: only http and https URLs are allowed\n"
    result = cli("webhooks", "add", "https://example.com/", "--event", "Bad Pattern")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: patterns: invalid event pattern 'Bad Pattern'")


def test_webhooks_test_sends_a_signed_ping_and_prints_status(cli, added, receiver):
    webhook_id, secret = added
    result = cli("webhooks", "test", str(webhook_id))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("delivered: HTTP 200 in ")
    [(headers, body)] = receiver.requests
    assert headers["Platform-Event"] == "core.webhook.test"
    assert verify_signature(secret, headers["Platform-Signature"], body)
    log = json.loads(cli("webhooks", "deliveries", str(webhook_id), "--json").stdout)
    assert [(d["event"], d["state"]) for d in log] == [("core.webhook.test", "succeeded")]
    assert [a["status_code"] for a in log[0]["attempts"]] == [200]


def test_webhooks_test_failing_receiver_exits_1_with_one_line(cli, added, receiver):
    receiver.status = 500
    result = cli("webhooks", "test", str(added[0]))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: test event not delivered: HTTP 500")
    assert result.stderr.count("\n") == 1


def test_webhooks_redeliver_queues_the_delivery(cli, added, receiver):
    webhook_id, _ = added
    receiver.status = 500
    cli("webhooks", "test", str(webhook_id))
    [delivery] = json.loads(cli("webhooks", "deliveries", str(webhook_id), "--json").stdout)
    assert delivery["state"] == "failed"
    result = cli("webhooks", "redeliver", str(webhook_id), str(delivery["id"]))
    assert result.exit_code == 0, result.output
    [delivery] = json.loads(cli("webhooks", "deliveries", str(webhook_id), "--json").stdout)
    assert delivery["state"] == "pending"
    table = cli("webhooks", "deliveries", str(webhook_id))
    assert "core.webhook.test" in table.stdout and "500" in table.stdout


def test_webhooks_disable_and_enable(cli, added):
    webhook_id, _ = added
    assert cli("webhooks", "disable", str(webhook_id)).stdout == f"disabled webhook {webhook_id}\n"
    assert json.loads(cli("webhooks", "list", "--json").stdout)[0]["active"] is False
    cli("webhooks", "enable", str(webhook_id))
    assert json.loads(cli("webhooks", "list", "--json").stdout)[0]["active"] is True


def test_webhooks_rotate_secret_prints_a_new_secret(cli, added):
    webhook_id, secret = added
    result = cli("webhooks", "rotate-secret", str(webhook_id))
    assert result.exit_code == 0
    assert result.stdout.startswith("whsec_") and result.stdout.strip() != secret


def test_webhooks_remove_deletes_it(cli, added):
    webhook_id, _ = added
    result = cli("webhooks", "remove", str(webhook_id))
    assert result.exit_code == 0
    assert json.loads(cli("webhooks", "list", "--json").stdout) == []


def test_webhooks_remove_unknown_id_fails(cli, migrated):
    result = cli("webhooks", "remove", "99")
    assert result.exit_code == 1
    assert result.stderr == "error: webhook 99 not found\n"


def test_webhooks_add_without_event_is_a_usage_error(cli, migrated):
    result = cli("webhooks", "add", "https://example.com/")
    assert result.exit_code == 2
    assert "--event" in result.output
