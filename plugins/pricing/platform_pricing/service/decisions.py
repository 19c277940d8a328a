"""Decisions: engines collected from the plugins, inputs built from the database, stored results.

A decision for an instance is made from a compact :class:`~platform_pricing.engines.DecisionInput`
built with a handful of indexed queries (never a scan of the price history):

- candidate pools: the pools of the instance's instance type in its region for which the
  client has reported at least one price (the current pool always included), each with its
  latest price (``ORDER BY observed_at DESC LIMIT 1`` on the ``(client_id, pool_id,
  observed_at)`` index). A latest price older than ``recent_window_seconds`` is stale: the
  pool's ``spot_price`` is None and the engines treat it as unpriced;
- window statistics (average, maximum, volatility = stddev / average) of the spot price over
  the last ``recent_window_seconds``;
- the client's own interruptions per pool: their number over ``interruption_rate_days``
  (``interruptions_recent``) and the most recent one;
- whether the current cloud instance has a termination or rebalance notice (a notice is
  pending as long as the instance runs on the cloud instance it was given for);
- the on-demand price: the latest one reported for the current pool, else for any candidate;
- the policy: ``settings.policy`` overridden key by key by ``Client.policy``.

Engine resolution: the agent's ``config.decision_engine``, else ``Client.engine``, else the
platform's ``active`` engine (``EngineSetting``), else ``settings.default_engine``; the
fallback is the ``fallback`` setting, else ``rules``.
The ``onnx`` engine is bound, for each decision, to the active version of the model named by
``settings.onnx_model`` (see :mod:`platform_pricing.service.ml_models`); without one it raises
and the fallback decides with the reason recorded. A decision the model made records the
model version (``model_version_id``, ``model_name``, ``model_version``).
A requested engine that is not installed (its plugin was removed) is replaced by the fallback
with a ``fallback_reason``; so is one that raises, answers nonsense or exceeds
``engine_budget_ms`` (see :func:`platform_pricing.engines.run_decision`). Should the chosen
fallback itself fail, the built-in ``rules`` engine decides.

Engines come from every active plugin's ``pricing_decision_engines()``, called the platform's
one way (``ctx.plugins.call_extension``); the pricing plugin's own (``rules``, ``cheapest``)
are collected first, then the other plugins' in pluggy's order (load order, adjusted by
``tryfirst``/``trylast``). A name already taken is refused: the later engine is ignored and a
warning is logged (``decision engine ignored: duplicate name``). A plugin whose hook raises is
skipped and logged with its name by the core; an object that is not an engine is skipped with
a warning; the plugin itself keeps running. An engine that fails while deciding is logged with
its plugin's name (``decision engine fell back``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from platform_core import Conflict, NotFound, ValidationFailed, page_by_id, upsert, utcnow
from platform_pricing import engines as eng
from platform_pricing import ml
from platform_pricing.models import (
    Agent,
    Client,
    Decision,
    EngineSetting,
    Instance,
    Interruption,
    Pool,
    PricePoint,
)
from platform_pricing.service import ml_models
from platform_pricing.settings import PricingSettings
from platform_pricing.tenancy import Tenant

log = logging.getLogger("platform_pricing.decisions")

OWN_PLUGIN = "pricing"
FALLBACK_ENGINE = "rules"
ENGINE_KEYS = ("active", "fallback")
NOTICE_KINDS = ("termination", "rebalance")
ENGINE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
POLICY_KEYS = frozenset(f.name for f in fields(eng.Policy))


# -- engines ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstalledEngine:
    """An engine and the plugin that contributed it."""

    engine: eng.DecisionEngine
    plugin: str


def collect_engines(plugins: Any) -> dict[str, InstalledEngine]:
    """``{name: engine}`` from every active plugin's ``pricing_decision_engines()``.

    ``plugins`` is the platform's plugin manager (``ctx.plugins``). The pricing plugin's own
    engines come first; a duplicate name, a hook that raises or an object lacking ``name``,
    ``description`` or ``decide`` is ignored with a warning.
    """
    results = plugins.call_extension("pricing_decision_engines")  # a raiser is logged, skipped
    results.sort(key=lambda result: result.plugin != OWN_PLUGIN)  # stable: ours first
    found: dict[str, InstalledEngine] = {}
    for result in results:
        if not isinstance(result.value, list | tuple):
            log.warning(
                "decision engines of plugin %r ignored: pricing_decision_engines() must return "
                "a list",
                result.plugin,
                extra={"plugin": result.plugin},
            )
            continue
        for engine in result.value:
            name = getattr(engine, "name", None)
            if (
                not isinstance(name, str)
                or not ENGINE_NAME_RE.fullmatch(name)
                or not isinstance(getattr(engine, "description", None), str)
                or not callable(getattr(engine, "decide", None))
            ):
                log.warning(
                    "decision engine ignored: not an engine (needs a name matching %s, a "
                    "description and decide())",
                    ENGINE_NAME_RE.pattern,
                    extra={"plugin": result.plugin, "engine": repr(engine)[:100]},
                )
                continue
            if name in found:
                log.warning(
                    "decision engine ignored: duplicate name",
                    extra={
                        "plugin": result.plugin,
                        "engine": name,
                        "taken_by": found[name].plugin,
                    },
                )
                continue
            found[name] = InstalledEngine(engine, result.plugin)
    return found


async def engine_settings(session: AsyncSession) -> dict[str, str]:
    """The platform's ``active`` and ``fallback`` engine names (the keys that are set)."""
    rows = await session.execute(
        select(EngineSetting.key, EngineSetting.engine).where(EngineSetting.key.in_(ENGINE_KEYS))
    )
    return {row.key: row.engine for row in rows}


def check_engine_name(name: str, installed: dict[str, InstalledEngine]) -> InstalledEngine:
    """The installed engine called ``name``: 422 for a malformed name, 404 for an unknown one."""
    if not ENGINE_NAME_RE.fullmatch(name):
        raise ValidationFailed(
            f"name: invalid engine name {name[:80]!r}",
            errors=[{"field": "name", "message": f"must match {ENGINE_NAME_RE.pattern}"}],
        )
    found = installed.get(name)
    if found is None:
        raise NotFound(f"decision engine {name!r} not found (installed: {', '.join(installed)})")
    return found


async def list_engines(
    session: AsyncSession, installed: dict[str, InstalledEngine], settings: PricingSettings
) -> list[dict[str, Any]]:
    """Every installed engine with whether it is the platform's active or fallback engine."""
    chosen = await engine_settings(session)
    active = chosen.get("active", settings.default_engine)
    fallback = chosen.get("fallback", FALLBACK_ENGINE)
    return [
        {
            "name": name,
            "description": item.engine.description,
            "plugin": item.plugin,
            "active": name == active,
            "fallback": name == fallback,
        }
        for name, item in installed.items()
    ]


async def set_engine(
    session: AsyncSession,
    key: Literal["active", "fallback"],
    name: str,
    installed: dict[str, InstalledEngine],
) -> None:
    """Make ``name`` the platform's active (or fallback) engine; 404/422 for a bad name."""
    check_engine_name(name, installed)
    # One statement: two concurrent first settings never collide on the key (last wins).
    await upsert(
        session, EngineSetting, [{"key": key, "engine": name, "updated_at": utcnow()}], keys=["key"]
    )


# -- inputs -----------------------------------------------------------------------------------


def effective_policy(client: Client, settings: PricingSettings) -> eng.Policy:
    """``settings.policy`` overridden by the client's keys (unknown stored keys are ignored)."""
    values = settings.policy.model_dump()
    overrides = dict(client.policy or {})
    unknown = sorted(set(overrides) - POLICY_KEYS)
    if unknown:
        log.warning(
            "unknown policy keys of a client ignored",
            extra={"client_id": client.id, "keys": unknown},
        )
    values.update({k: v for k, v in overrides.items() if k in POLICY_KEYS})
    return eng.Policy.from_dict(values)


def _inputs_statement() -> Any:
    """The one statement (one round trip) reading everything a decision needs about the pools.

    The pools of the current pool's region and instance type, each with its latest price's id,
    window statistics and interruptions (index probes and short range scans per pool), then
    the latest price rows by primary key. A correlated subquery inside the join condition
    instead would be re-evaluated for every price row on SQLite. Built once, with bound
    parameters ``cid``, ``pool_id``, ``cloud_id``, ``window_start``, ``now``, ``rate_start``.
    """
    cid: Any = bindparam("cid")
    current = aliased(Pool)

    def per_pool(column: Any, *where: Any) -> Any:
        return select(column).where(*where).correlate(Pool).scalar_subquery()

    priced = (PricePoint.client_id == cid, PricePoint.pool_id == Pool.id)
    window = (
        *priced,
        PricePoint.observed_at >= bindparam("window_start"),
        PricePoint.observed_at <= bindparam("now"),
    )
    spot = PricePoint.spot_price
    interrupted = (Interruption.client_id == cid, Interruption.pool_id == Pool.id)
    latest_id = (
        select(PricePoint.id)
        .where(*priced)
        .order_by(PricePoint.observed_at.desc(), PricePoint.id.desc())
        .limit(1)
        .correlate(Pool)
        .scalar_subquery()
    )
    noticed = (
        select(Interruption.id)
        .where(
            Interruption.client_id == cid,
            Interruption.cloud_id == bindparam("cloud_id"),
            Interruption.kind.in_(NOTICE_KINDS),
        )
        .limit(1)
        .scalar_subquery()
    )
    candidates = (
        select(
            Pool.id.label("id"),
            Pool.region.label("region"),
            Pool.zone.label("zone"),
            Pool.instance_type.label("instance_type"),
            latest_id.label("latest_id"),
            per_pool(func.avg(spot), *window).label("avg"),
            per_pool(func.max(spot), *window).label("max"),
            per_pool(func.avg(spot * spot), *window).label("avg_sq"),
            per_pool(func.max(Interruption.noticed_at), *interrupted).label("last_interruption"),
            per_pool(
                func.count(Interruption.id),
                *interrupted,
                Interruption.noticed_at >= bindparam("rate_start"),
            ).label("interruptions"),
        )
        .join(
            current,
            and_(
                current.id == bindparam("pool_id"),
                current.region == Pool.region,
                current.instance_type == Pool.instance_type,
            ),
        )
        .subquery("candidates")
    )
    return (
        select(
            candidates,
            PricePoint.observed_at,
            PricePoint.spot_price,
            PricePoint.on_demand_price,
            noticed.label("noticed"),
        )
        .select_from(candidates)
        .outerjoin(PricePoint, PricePoint.id == candidates.c.latest_id)
        .order_by(candidates.c.id)
    )


INPUTS = _inputs_statement()


async def build_input(
    session: AsyncSession,
    instance: Instance,
    client: Client,
    settings: PricingSettings,
    now: datetime,
) -> eng.DecisionInput:
    """The engines' view of ``instance`` at ``now`` (see the module docstring); 409 when no
    on-demand price is known for its instance type in its region."""
    window_start = now - timedelta(seconds=settings.recent_window_seconds)
    params = {
        "cid": instance.client_id,
        "pool_id": instance.pool_id,
        "cloud_id": instance.cloud_id,
        "window_start": window_start,
        "now": now,
        "rate_start": now - timedelta(days=settings.interruption_rate_days),
    }
    rows = (await session.execute(INPUTS, params)).all()
    current_row = next((r for r in rows if r.id == instance.pool_id), None)
    if current_row is None:  # a foreign key: only a broken database gets here
        raise NotFound(f"pool {instance.pool_id} not found")
    rows = [r for r in rows if r.observed_at is not None or r.id == instance.pool_id]

    pools = []
    for r in rows:
        fresh = r.observed_at is not None and r.observed_at >= window_start
        volatility = None
        if r.avg:
            variance = max(float(r.avg_sq) - float(r.avg) ** 2, 0.0)
            volatility = variance**0.5 / float(r.avg)
        pools.append(
            eng.PoolState(
                pool_id=r.id,
                region=r.region,
                zone=r.zone,
                instance_type=r.instance_type,
                spot_price=float(r.spot_price) if fresh else None,
                recent_avg=float(r.avg) if r.avg is not None else None,
                recent_max=float(r.max) if r.max is not None else None,
                volatility=volatility,
                last_interruption_at=r.last_interruption,
                interruptions_recent=int(r.interruptions or 0),
            )
        )

    priced = [r for r in rows if r.on_demand_price is not None]
    own = next((r for r in priced if r.id == instance.pool_id), None)
    newest = own or max(priced, key=lambda r: r.observed_at, default=None)
    if newest is None or not newest.on_demand_price:
        raise Conflict(
            f"no on-demand price known for {current_row.instance_type} in "
            f"{current_row.region}: report prices first"
        )
    spot_now = instance.lifecycle == "spot"
    return eng.DecisionInput(
        now=now,
        instance_id=instance.id,
        current_pool_id=instance.pool_id if spot_now else None,
        current_lifecycle="spot" if spot_now else "on-demand",
        on_demand_price=float(newest.on_demand_price),
        pools=tuple(pools),
        last_switch_at=instance.last_switch_at,
        current_pool_interrupted=current_row.noticed is not None,
        policy=effective_policy(client, settings),
    )


# -- deciding ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    """An engine run's result and the model version that made the decision (if a model did)."""

    result: eng.EngineResult
    model: ml.LoadedModel | None = None


async def _bind(
    session: AsyncSession, engine: eng.DecisionEngine, settings: PricingSettings
) -> eng.DecisionEngine:
    """``engine``, or for the ``onnx`` engine: it bound to the active model version."""
    if isinstance(engine, ml.OnnxEngine):
        return await ml_models.bind_engine(session, settings.onnx_model)
    return engine


def _model_of(engine: eng.DecisionEngine, result: eng.EngineResult) -> ml.LoadedModel | None:
    if isinstance(engine, ml.BoundOnnxEngine) and result.engine == engine.name:
        return engine.model
    return None


async def run(
    session: AsyncSession,
    inputs: eng.DecisionInput,
    client: Client,
    installed: dict[str, InstalledEngine],
    settings: PricingSettings,
    chosen: dict[str, str] | None = None,
    agent_engine: str | None = None,
) -> Ran:
    """Run the agent's or client's engine with the fallback (see the module docstring);
    ``chosen`` are the platform's engine settings when already read, ``agent_engine`` the
    agent's own override (its ``config.decision_engine``)."""
    if chosen is None:
        chosen = await engine_settings(session)
    requested = agent_engine or client.engine or chosen.get("active") or settings.default_engine
    rules = installed.get(FALLBACK_ENGINE)
    last_resort: eng.DecisionEngine = rules.engine if rules is not None else eng.RuleEngine()
    wanted_fallback = installed.get(chosen.get("fallback") or FALLBACK_ENGINE)
    fallback = wanted_fallback.engine if wanted_fallback is not None else last_resort
    budget = settings.engine_budget_ms

    found = installed.get(requested)
    missing: str | None = None
    engine: eng.DecisionEngine
    if found is None:
        missing = f"engine {requested!r} is not installed"
        engine = fallback
        plugin = wanted_fallback.plugin if wanted_fallback is not None else OWN_PLUGIN
    else:
        engine, plugin = found.engine, found.plugin
    engine = await _bind(session, engine, settings)
    if fallback.name != engine.name:
        fallback = await _bind(session, fallback, settings)
    else:
        fallback = engine
    try:
        result = await eng.run_decision(engine, fallback, inputs, budget, plugin=plugin)
    except Exception as exc:  # the fallback failed (or is the engine that failed)
        if fallback.name == last_resort.name:
            raise
        why = f"fallback engine {fallback.name!r} failed: {type(exc).__name__}: {exc}"
        log.warning("decision fallback failed", extra={"instance_id": inputs.instance_id})
        last = await eng.run_decision(last_resort, last_resort, inputs, budget)
        result = eng.EngineResult(last.decision, last.engine, engine.name, why, last.elapsed_ms)
    if missing is not None:
        reason = (
            missing if result.fallback_reason is None else f"{missing}; {result.fallback_reason}"
        )
        result = eng.EngineResult(
            result.decision, result.engine, requested, reason, result.elapsed_ms
        )
    model = None
    if result.engine == ml.ONNX_ENGINE:
        model = _model_of(engine, result) or _model_of(fallback, result)
    return Ran(result, model)


def _row(inputs: eng.DecisionInput, ran: Ran, client_id: int) -> Decision:
    result, model = ran.result, ran.model
    d = result.decision
    return Decision(
        client_id=client_id,
        instance_id=inputs.instance_id,
        engine=result.engine,
        requested_engine=result.requested,
        fallback_reason=(result.fallback_reason or None) and result.fallback_reason[:500],
        outcome=d.action,
        target_pool_id=d.target_pool_id,
        expected_saving_per_hour=d.expected_saving_per_hour,
        reason=d.reason[:1000],
        inputs=inputs.to_dict(),
        elapsed_ms=round(result.elapsed_ms, 3),
        created_at=inputs.now,
        model_version_id=model.version_id if model else None,
        model_name=model.name if model else None,
        model_version=model.version if model else None,
    )


def _context_statement() -> Any:
    """The agent's instance, its client and the platform's engine settings, in one query."""
    setting = aliased(EngineSetting)

    def chosen_engine(key: str) -> Any:
        return select(setting.engine).where(setting.key == key).scalar_subquery().label(key)

    return (
        select(
            Instance,
            Client,
            *(chosen_engine(key) for key in ENGINE_KEYS),
            Agent.config.label("agent_config"),
        )
        .join(Client, Client.id == Instance.client_id)
        .join(Agent, Agent.id == Instance.agent_id)
        .where(Instance.agent_id == bindparam("agent_id"))
    )


CONTEXT = _context_statement()


@dataclass
class Made:
    """A decision: its row (stored or not), the engine's details and the instance."""

    row: Decision
    details: dict[str, Any]
    instance: Instance


async def decide(
    session: AsyncSession,
    tenant: Tenant,
    agent_id: int,
    *,
    installed: dict[str, InstalledEngine],
    settings: PricingSettings,
    store: bool = True,
    now: datetime | None = None,
) -> Made:
    """Decide for the instance of ``agent_id`` (404 when not visible) and store it unless
    ``store`` is False (then the row has no id)."""
    found = (await session.execute(CONTEXT, {"agent_id": agent_id})).first()
    if (
        found is None
        or not tenant.sees(found.Instance.client_id)
        or (tenant.kind == "agent" and tenant.agent_id != agent_id)
    ):
        raise NotFound(f"agent {agent_id} not found")
    instance, client = found.Instance, found.Client
    chosen = {k: found[i + 2] for i, k in enumerate(ENGINE_KEYS) if found[i + 2] is not None}
    when = now or utcnow()
    inputs = await build_input(session, instance, client, settings, when)
    override = (found.agent_config or {}).get("decision_engine")
    agent_engine = override if isinstance(override, str) else None
    ran = await run(session, inputs, client, installed, settings, chosen, agent_engine)
    row = _row(inputs, ran, client.id)
    if store:
        session.add(row)
        await session.flush()
    return Made(row, dict(ran.result.decision.details), instance)


# -- reading ----------------------------------------------------------------------------------


def _visible(tenant: Tenant) -> list[Any]:
    clauses = [tenant.where(Decision.client_id)]
    if tenant.kind == "agent":
        clauses.append(
            Decision.instance_id.in_(
                select(Instance.id).where(Instance.agent_id == tenant.agent_id).scalar_subquery()
            )
        )
    return clauses


async def get_decision(session: AsyncSession, tenant: Tenant, decision_id: int) -> Decision:
    """One decision visible to ``tenant`` (an agent: its own instance's), or 404."""
    row = await session.scalar(
        select(Decision).where(Decision.id == decision_id, *_visible(tenant))
    )
    if row is None:
        raise NotFound(f"decision {decision_id} not found")
    return row


async def list_decisions(
    session: AsyncSession,
    tenant: Tenant,
    *,
    instance_id: int | None = None,
    outcome: str | None = None,
    engine: str | None = None,
    cursor: int | None = None,
    limit: int = 50,
) -> tuple[list[Decision], int | None]:
    """A page of decisions, newest first, and the cursor of the next page (None at the end)."""
    stmt = select(Decision).where(*_visible(tenant))
    if instance_id is not None:
        stmt = stmt.where(Decision.instance_id == instance_id)
    if outcome is not None:
        stmt = stmt.where(Decision.outcome == outcome)
    if engine is not None:
        stmt = stmt.where(Decision.engine == engine)
    return await page_by_id(session, stmt, Decision.id, cursor=cursor, limit=limit, descending=True)
