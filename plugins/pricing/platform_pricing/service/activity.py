"""The admin's activity feed across clients, and client growth over time.

Both read existing rows only, nothing is recorded twice. The feed is one ``UNION ALL`` of
client creations, agent registrations (first registration; a re-registration keeps its
date), switches, interruptions (termination and rebalance notices) and decisions, newest
first, keyset paged on ``(at, kind, id)`` with an opaque cursor. Growth counts rows by their
creation date, so a deleted client, agent or instance no longer counts in any period.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    Forbidden,
    decode_cursor,
    dialect_of,
    encode_cursor,
    fetch_page,
    invalid,
    invalid_cursor,
    utcnow,
)
from platform_pricing import tenancy
from platform_pricing.models import Agent, Client, Decision, Instance, Interruption, Switch
from platform_pricing.tenancy import Tenant

KINDS = ("client", "registration", "switch", "interruption", "decision")
MAX_BUCKETS = {"day": 366, "month": 120}


def _require_admin(tenant: Tenant) -> None:
    if not tenant.is_admin:
        raise Forbidden("the activity feed and growth are for admins (scope pricing:admin)")


def _kind(name: str) -> Any:
    return literal_column(f"'{name}'", String)


def _no_int() -> Any:
    return cast(null(), Integer)


def _feed() -> Any:
    """Every event as ``(kind, id, at, client_id, agent_id, instance_id, summary, detail)``."""
    parts = [
        select(
            _kind("client").label("kind"),
            Client.id.label("id"),
            Client.created_at.label("at"),
            Client.id.label("client_id"),
            _no_int().label("agent_id"),
            _no_int().label("instance_id"),
            cast(Client.name, String).label("summary"),
            cast(Client.display_name, String).label("detail"),
        ),
        select(
            _kind("registration"),
            Agent.id,
            Agent.registered_at,
            Agent.client_id,
            Agent.id,
            _no_int(),
            cast(Agent.name, String),
            cast(Agent.version, String),
        ),
        select(
            _kind("switch"),
            Switch.id,
            Switch.switched_at,
            Switch.client_id,
            _no_int(),
            Switch.instance_id,
            cast(Switch.to_lifecycle, String),
            cast(Switch.reason, String),
        ),
        select(
            _kind("interruption"),
            Interruption.id,
            Interruption.noticed_at,
            Interruption.client_id,
            _no_int(),
            Interruption.instance_id,
            cast(Interruption.kind, String),
            cast(Interruption.cloud_id, String),
        ),
        select(
            _kind("decision"),
            Decision.id,
            Decision.created_at,
            Decision.client_id,
            _no_int(),
            Decision.instance_id,
            cast(Decision.outcome, String),
            cast(Decision.engine, String),
        ),
    ]
    return union_all(*parts).subquery("activity")


async def feed(
    session: AsyncSession,
    tenant: Tenant,
    *,
    client_id: int | None,
    kinds: Sequence[str] | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """A page of the activity feed, newest first (admins only), by client and kind."""
    _require_admin(tenant)
    if client_id is not None:
        await tenancy.get_client(session, tenant, client_id)
    feed_rows = _feed()
    stmt = select(feed_rows)
    if client_id is not None:
        stmt = stmt.where(feed_rows.c.client_id == client_id)
    if kinds:
        stmt = stmt.where(feed_rows.c.kind.in_(list(kinds)))
    after = None
    if cursor is not None:
        at, kind, row_id = _position(cursor)
        c = feed_rows.c
        after = or_(
            c.at < at,
            and_(c.at == at, c.kind < kind),
            and_(c.at == at, c.kind == kind, c.id < row_id),
        )
    c = feed_rows.c
    rows, last = await fetch_page(
        session,
        stmt,
        order_by=[c.at.desc(), c.kind.desc(), c.id.desc()],
        limit=limit,
        after=after,
        scalars=False,
        key=lambda row: row,
    )
    nxt = None
    if last is not None:
        nxt = encode_cursor({"at": last.at.isoformat(), "kind": last.kind, "id": last.id})
    return rows, nxt


def _position(cursor: str) -> tuple[datetime, str, int]:
    data = decode_cursor(cursor, required=("at", "kind", "id"))
    try:
        at = datetime.fromisoformat(data["at"])
        kind, row_id = data["kind"], data["id"]
        if at.tzinfo is None or kind not in KINDS or not isinstance(row_id, int):
            raise ValueError("not a feed position")
    except (TypeError, ValueError):
        raise invalid_cursor() from None
    return at, kind, row_id


# -- growth -----------------------------------------------------------------------------------


def _bucket(session: AsyncSession, column: Any, period: str) -> Any:
    """The UTC day (``YYYY-MM-DD``) or month (``YYYY-MM``) of a timestamp, as text."""
    if dialect_of(session) == "postgresql":
        fmt = "YYYY-MM-DD" if period == "day" else "YYYY-MM"
        return func.to_char(func.timezone("UTC", column), fmt)
    # SQLite keeps UTC timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' text.
    return func.substr(column, 1, 10 if period == "day" else 7)


def _starts(period: str, since: date, until: date) -> list[date]:
    if period == "day":
        return [since + timedelta(days=n) for n in range((until - since).days + 1)]
    starts, current = [], since.replace(day=1)
    while current <= until:
        starts.append(current)
        current = (current + timedelta(days=32)).replace(day=1)
    return starts


def _label(start: date, period: str) -> str:
    return start.isoformat() if period == "day" else start.isoformat()[:7]


async def growth(
    session: AsyncSession,
    tenant: Tenant,
    *,
    period: str,
    since: date | None,
    until: date | None,
) -> dict[str, Any]:
    """New and cumulative clients, agents and instances per UTC day or month (admins only).

    ``until`` defaults to today, ``since`` to 30 days (day) or 12 months (month) before; at
    most 366 days or 120 months (422 naming ``since``).
    """
    _require_admin(tenant)
    until = until or utcnow().date()
    if since is None and period == "day":
        since = until - timedelta(days=29)
    elif since is None:
        months = until.year * 12 + until.month - 1 - 11
        since = date(months // 12, months % 12 + 1, 1)
    if since > until:
        raise invalid("since", "must not be after until", location="query")
    starts = _starts(period, since, until)
    if len(starts) > MAX_BUCKETS[period]:
        raise invalid(
            "since", f"at most {MAX_BUCKETS[period]} {period}s in one request", location="query"
        )
    begin = datetime.combine(starts[0], time(), UTC)
    end = datetime.combine(until + timedelta(days=1), time(), UTC)
    labels = [_label(s, period) for s in starts]
    buckets: dict[str, dict[str, int]] = {label: {} for label in labels}
    totals: dict[str, int] = {}
    for name, column in (
        ("clients", Client.created_at),
        ("agents", Agent.registered_at),
        ("instances", Instance.created_at),
    ):
        before = await session.scalar(select(func.count()).where(column < begin))
        totals[name] = int(before or 0)
        key = _bucket(session, column, period).label("bucket")
        rows = await session.execute(
            select(key, func.count()).where(column >= begin, column < end).group_by(key)
        )
        for bucket, count in rows.all():
            if bucket in buckets:
                buckets[bucket][name] = int(count)
    out = []
    for label in labels:
        counts = buckets[label]
        for name in totals:
            totals[name] += counts.get(name, 0)
        out.append(
            {
                "start": label,
                **{name: counts.get(name, 0) for name in totals},
                **{f"total_{name}": value for name, value in totals.items()},
            }
        )
    return {
        "period": period,
        "since": _label(starts[0], period),
        "until": _label(until, period),
        "buckets": out,
    }
