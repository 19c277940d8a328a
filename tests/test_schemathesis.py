"""Schemathesis over the whole OpenAPI document (Python API, ``from_asgi``), as an admin.

Every installed plugin is enabled. Checks: no 5xx, documented status codes and content
types, and response bodies that match their schemas. The number of examples per operation
is bounded (``SCHEMATHESIS_MAX_EXAMPLES``, default 25) to keep ``make test`` quick.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from platform_core.app import boot, create_app
from platform_core.auth import service
from platform_core.auth.tokens import encode_jwt
from platform_core.config import Config, CoreSettings
from platform_core.manager import discover
from platform_core.migrate import upgrade
from platform_core.testing import TEST_DATABASE_ENV, _fresh_schema

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


async def _prepare(ctx) -> str:
    await upgrade(ctx.db, ctx.state["migration_targets"])
    async with ctx.db.session() as session:
        admin = await service.create_user(session, "fuzz-admin", "admin", None)
    scopes = sorted(ctx.state["role_scopes"]["admin"])
    token, _ = encode_jwt(ctx.secret_key, admin.id, scopes, timedelta(hours=1))
    await ctx.db.dispose()  # the app reopens connections on schemathesis' own event loop
    return token


@pytest.fixture(scope="module")
def fuzz_platform(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    server = os.environ.get(TEST_DATABASE_ENV)
    schema_name = None
    if server:
        schema_name, drop = asyncio.run(_fresh_schema(server))
    url = server or f"sqlite+aiosqlite:///{tmp / 'fuzz.db'}"
    core = CoreSettings(
        database_url=url,
        secret_key="fuzz-" + "k" * 40,
        log_level="WARNING",
        auth={"login_attempts": 1000},
    )
    config = Config(path=tmp / "plugins.toml", core=core, enabled=sorted(discover()))
    ctx = boot(config, schema=schema_name)
    token = asyncio.run(_prepare(ctx))
    app = create_app(ctx)
    yield app, token
    if server:
        asyncio.run(drop())


def _fuzz(operation, token) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

    run()


def test_api_conforms_to_its_schema_and_never_fails(fuzz_platform):
    app, token = fuzz_platform
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures, tested = [], 0
    operations = [result.ok() for result in schema.get_all_operations()]
    # Changes to users may demote, deactivate or delete the fuzzing admin itself (once the
    # fuzzer made another admin): fuzz them last, so they cannot starve the others of rights.
    operations.sort(key=lambda op: op.path.startswith("/api/core/users/") and op.method != "get")
    for operation in operations:
        tested += 1
        try:
            _fuzz(operation, token)
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert tested >= 10
    assert not failures, "\n\n".join(failures)
