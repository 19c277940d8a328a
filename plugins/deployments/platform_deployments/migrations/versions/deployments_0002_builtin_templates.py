"""deployments: seed the built-in templates (static site, Python web, Node, MongoDB app)

Revision ID: deployments_0002
Revises: deployments_0001
Create Date: 2026-12-07

The specs are frozen here (a data migration never imports the plugin's code): later
versions of a built-in come as new versions, by an admin or a later migration.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from platform_core import UTCDateTime

revision = "deployments_0002"
down_revision = "deployments_0001"
branch_labels = None
depends_on = None

PROBE = {"path": "/", "initial_delay_seconds": 5, "period_seconds": 10, "failure_threshold": 3}
SMALL = {
    "cpu_request_millis": 50,
    "memory_request_mib": 64,
    "cpu_limit_millis": 200,
    "memory_limit_mib": 128,
}
MEDIUM = {
    "cpu_request_millis": 100,
    "memory_request_mib": 128,
    "cpu_limit_millis": 500,
    "memory_limit_mib": 512,
}

BUILTINS = [
    {
        "name": "static-site",
        "title": "Static site",
        "description": "nginx (unprivileged) serving a static site.",
        "spec": {
            "image": "nginxinc/nginx-unprivileged:1.27-alpine",
            "port": 8080,
            "replicas": 1,
            "resources": SMALL,
            "readiness": PROBE,
            "liveness": PROBE,
            "variables": [
                {
                    "name": "SITE_TITLE",
                    "type": "string",
                    "required": False,
                    "default": "My site",
                    "secret": False,
                    "choices": None,
                    "description": "Title shown by the site",
                },
            ],
            "mongo": False,
        },
    },
    {
        "name": "python-web",
        "title": "Python web app",
        "description": "A Python ASGI/WSGI app image listening on 8000.",
        "spec": {
            "image": "python:3.12-slim",
            "port": 8000,
            "replicas": 1,
            "resources": MEDIUM,
            "readiness": {**PROBE, "path": "/healthz"},
            "liveness": {**PROBE, "path": "/healthz", "initial_delay_seconds": 15},
            "variables": [
                {
                    "name": "WORKERS",
                    "type": "int",
                    "required": False,
                    "default": 2,
                    "secret": False,
                    "choices": None,
                    "description": "Worker processes",
                },
                {
                    "name": "LOG_LEVEL",
                    "type": "enum",
                    "required": False,
                    "default": "info",
                    "secret": False,
                    "choices": ["debug", "info", "warning", "error"],
                    "description": "",
                },
                {
                    "name": "SECRET_KEY",
                    "type": "string",
                    "required": True,
                    "default": None,
                    "secret": True,
                    "choices": None,
                    "description": "The app's signing key",
                },
            ],
            "mongo": False,
        },
    },
    {
        "name": "node-app",
        "title": "Node app",
        "description": "A Node.js app image listening on 3000.",
        "spec": {
            "image": "node:22-alpine",
            "port": 3000,
            "replicas": 1,
            "resources": MEDIUM,
            "readiness": PROBE,
            "liveness": {**PROBE, "initial_delay_seconds": 15},
            "variables": [
                {
                    "name": "NODE_ENV",
                    "type": "enum",
                    "required": False,
                    "default": "production",
                    "secret": False,
                    "choices": ["production", "development"],
                    "description": "",
                },
                {
                    "name": "DEBUG",
                    "type": "bool",
                    "required": False,
                    "default": False,
                    "secret": False,
                    "choices": None,
                    "description": "",
                },
            ],
            "mongo": False,
        },
    },
    {
        "name": "mongo-app",
        "title": "App with MongoDB",
        "description": "A web app wired to its owner's MongoDB (MONGODB_URI from a Secret).",
        "spec": {
            "image": "node:22-alpine",
            "port": 3000,
            "replicas": 1,
            "resources": MEDIUM,
            "readiness": PROBE,
            "liveness": {**PROBE, "initial_delay_seconds": 15},
            "variables": [
                {
                    "name": "DB_NAME_SUFFIX",
                    "type": "string",
                    "required": False,
                    "default": "",
                    "secret": False,
                    "choices": None,
                    "description": "",
                },
            ],
            "mongo": True,
        },
    },
]

templates = sa.table(
    "deployments_templates",
    sa.column("name", sa.String),
    sa.column("version", sa.Integer),
    sa.column("title", sa.String),
    sa.column("description", sa.Text),
    sa.column("spec", sa.JSON),
    sa.column("builtin", sa.Boolean),
    sa.column("retired_at", UTCDateTime),
    sa.column("created_at", UTCDateTime),
)


def upgrade() -> None:
    now = datetime.now(UTC)
    op.bulk_insert(
        templates,
        [
            {**t, "version": 1, "builtin": True, "retired_at": None, "created_at": now}
            for t in BUILTINS
        ],
    )


def downgrade() -> None:
    op.execute(
        templates.delete()
        .where(templates.c.version == 1)
        .where(templates.c.name.in_([t["name"] for t in BUILTINS]))
    )
