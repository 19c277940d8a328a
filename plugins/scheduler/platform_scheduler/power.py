"""Power control: the driver interface, the Redfish and SNMP drivers, configs and audited actions.

Credentials are stored as a *reference* (a name); the secret itself comes from
``[plugins.scheduler.credentials.<name>]`` or ``PLATFORM_SCHEDULER_CREDENTIAL_<NAME>`` at the
moment of the action, and is never returned, logged or written to the audit.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from platform_inventory import api as inventory
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    Conflict,
    Forbidden,
    NotFound,
    PlatformContext,
    PlatformError,
    Principal,
    SlidingWindowLimiter,
    TooManyRequests,
    invalid,
    utcnow,
)
from platform_scheduler import outlets
from platform_scheduler.models import Booking, PowerAudit, PowerConfig, Slot
from platform_scheduler.settings import SchedulerSettings

log = logging.getLogger("platform_scheduler.power")

ACTIONS = ("on", "off", "cycle")
ENV_PREFIX = "PLATFORM_SCHEDULER_CREDENTIAL_"


class PowerError(Exception):
    """A driver could not carry out an action (device refused, unreachable, bad reply)."""


class PowerFailed(PlatformError):
    """The device's BMC or PDU failed the action (502 problem+json)."""

    status, title, type_suffix = 502, "Bad gateway", "power-failed"


@dataclass(frozen=True)
class PowerTarget:
    """Everything a driver needs for one device (credentials already resolved)."""

    device_id: int
    address: str
    outlet: str | None
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    community: str | None = field(default=None, repr=False)
    settings: SchedulerSettings = field(
        default_factory=lambda: SchedulerSettings.model_validate({}), repr=False
    )


class PowerDriver(Protocol):
    """What ``scheduler_power_drivers()`` implementations return."""

    name: str

    async def on(self, target: PowerTarget) -> None:
        """Switch the device on."""

    async def off(self, target: PowerTarget) -> None:
        """Switch the device off."""

    async def cycle(self, target: PowerTarget) -> None:
        """Switch the device off and on again."""

    async def state(self, target: PowerTarget) -> str:
        """``"on"``, ``"off"`` or another short word."""


# -- drivers ----------------------------------------------------------------------------


class RedfishDriver:
    """A BMC speaking Redfish, through ``sushy`` (a sync client, run in a thread).

    ``address`` is the BMC's base URL (``https://bmc.example``); ``outlet`` the system id or
    path (default: the first system).
    """

    name = "redfish"

    def _system(self, target: PowerTarget, *, read: bool = False) -> Any:
        import sushy

        quick: dict[str, Any] = {}
        if read:  # a state read: one try per request (sushy reads 0 as 3), bounded in time
            timeout = target.settings.power_read_timeout
            quick = {"server_side_retries": 1, "read_timeout": timeout, "connect_timeout": timeout}
        root = sushy.Sushy(
            target.address.rstrip("/") + "/redfish/v1",
            username=target.username,
            password=target.password,
            verify=target.settings.redfish_verify_tls,
            **quick,
        )
        if target.outlet:
            path = target.outlet
            if not path.startswith("/"):
                path = f"/redfish/v1/Systems/{path}"
        else:
            members = root.get_system_collection().members_identities
            if not members:
                raise PowerError("the BMC has no systems")
            path = sorted(members)[0]
        return root.get_system(path)

    def _run(self, target: PowerTarget, action: str) -> str:
        import sushy
        from sushy import exceptions

        try:
            system = self._system(target, read=action == "state")
            if action != "state":
                reset = {
                    "on": sushy.ResetType.ON,
                    "off": sushy.ResetType.FORCE_OFF,
                    "cycle": sushy.ResetType.FORCE_RESTART,
                }[action]
                system.reset_system(reset)
                system.refresh()
            state = system.power_state
        except exceptions.SushyError as exc:
            raise PowerError(f"redfish: {type(exc).__name__}: {exc}") from exc
        value = getattr(state, "value", state)
        return str(value).lower() if value is not None else "unknown"

    async def on(self, target: PowerTarget) -> None:
        """Reset type ``On``."""
        await asyncio.to_thread(self._run, target, "on")

    async def off(self, target: PowerTarget) -> None:
        """Reset type ``ForceOff``."""
        await asyncio.to_thread(self._run, target, "off")

    async def cycle(self, target: PowerTarget) -> None:
        """Reset type ``ForceRestart``."""
        await asyncio.to_thread(self._run, target, "cycle")

    async def state(self, target: PowerTarget) -> str:
        """The system's ``PowerState``, lowercased (``on``, ``off``, ``poweringon``...)."""
        return await asyncio.to_thread(self._run, target, "state")


class SnmpDriver:
    """A switched PDU outlet over SNMP v2c (APC PowerNet-MIB ``sPDUOutletCtl`` by default).

    ``address`` is ``host`` or ``host:port`` (161); ``outlet`` the outlet number; the
    community comes from the credentials. OID and values: ``snmp_*`` settings.
    """

    name = "snmp"

    async def _call(self, target: PowerTarget, value: int | None) -> int:
        from pysnmp.hlapi.v3arch.asyncio import (
            CommunityData,
            ContextData,
            ObjectIdentity,
            ObjectType,
            SnmpEngine,
            UdpTransportTarget,
            get_cmd,
            set_cmd,
        )
        from pysnmp.proto.rfc1902 import Integer

        if not target.outlet or not target.outlet.isdigit():
            raise PowerError("snmp: the outlet must be a number")
        host, _, port = (
            target.address.rpartition(":")
            if ":" in target.address
            else (
                target.address,
                "",
                "161",
            )
        )
        oid = f"{target.settings.snmp_outlet_oid}.{int(target.outlet)}"
        engine = SnmpEngine()
        try:
            transport = await UdpTransportTarget.create((host, int(port)), timeout=1, retries=1)
            auth = CommunityData(target.community or "private", mpModel=1)
            if value is None:
                result = await get_cmd(
                    engine, auth, transport, ContextData(), ObjectType(ObjectIdentity(oid))
                )
            else:
                result = await set_cmd(
                    engine,
                    auth,
                    transport,
                    ContextData(),
                    ObjectType(ObjectIdentity(oid), Integer(value)),
                )
        except PowerError:
            raise
        except Exception as exc:  # name resolution, sockets: the PDU is unreachable
            raise PowerError(f"snmp: {type(exc).__name__}: {exc}") from exc
        finally:
            engine.close_dispatcher()
        error_indication, error_status, _index, var_binds = result
        if error_indication:
            raise PowerError(f"snmp: {error_indication}")
        if error_status:
            raise PowerError(f"snmp: {error_status.prettyPrint()}")
        answer = var_binds[0][1]
        # An unknown or read-only OID answers "no such instance" with no error status.
        if not isinstance(answer, Integer):
            raise PowerError(
                f"snmp: outlet {target.outlet} does not exist ({type(answer).__name__})"
            )
        return int(answer)

    async def on(self, target: PowerTarget) -> None:
        """Write the "on" value to the outlet's control OID."""
        await self._call(target, target.settings.snmp_on_value)

    async def off(self, target: PowerTarget) -> None:
        """Write the "off" value."""
        await self._call(target, target.settings.snmp_off_value)

    async def cycle(self, target: PowerTarget) -> None:
        """Write the "reboot" value."""
        await self._call(target, target.settings.snmp_cycle_value)

    async def state(self, target: PowerTarget) -> str:
        """Read the control OID back: ``on``, ``off``, ``cycling`` or ``unknown(<n>)``."""
        value = await self._call(target, None)
        s = target.settings
        names = {s.snmp_on_value: "on", s.snmp_off_value: "off", s.snmp_cycle_value: "cycling"}
        return names.get(value, f"unknown({value})")


def builtin_drivers() -> list[Any]:
    """The drivers the scheduler ships: ``redfish`` and ``snmp``."""
    return [RedfishDriver(), SnmpDriver()]


class Drivers(dict[str, Any]):
    """``{name: driver}``, remembering which plugin contributed each driver."""

    def __init__(self) -> None:
        super().__init__()
        self.plugins: dict[str, str] = {}

    def plugin_of(self, name: str) -> str:
        """The plugin that contributed driver ``name`` (``""`` when unknown)."""
        return self.plugins.get(name, "")


def collect_drivers(plugins: Any) -> Drivers:
    """Every ``scheduler_power_drivers`` implementation's drivers, by name.

    ``plugins`` is ``ctx.plugins``; the hook is called the platform's one way
    (``call_extension``): in pluggy's order, which is load order unless an implementation
    says ``tryfirst``/``trylast``, and a raising implementation is skipped and logged with
    its plugin. When two plugins offer one name, the first called keeps it (the scheduler's
    own ``redfish`` and ``snmp`` unless another plugin's implementation is ``tryfirst``) and
    the other is ignored with a warning naming both.
    """
    drivers = Drivers()
    for result in plugins.call_extension("scheduler_power_drivers"):
        for driver in result.value or []:
            name = str(getattr(driver, "name", ""))
            if name in drivers:
                log.warning(
                    "power driver %r of plugin %r ignored: plugin %r offers it first",
                    name,
                    result.plugin,
                    drivers.plugin_of(name),
                    extra={"plugin": result.plugin, "driver": name},
                )
                continue
            drivers[name] = driver
            drivers.plugins[name] = result.plugin
    return drivers


async def _drive(
    drivers: Drivers, name: str, method: str, target: PowerTarget, timeout: float
) -> Any:
    """Run one driver method; a driver that raises anything else than ``PowerError`` is a
    broken driver: logged with its plugin's name and reported as a ``PowerError``."""
    try:
        return await asyncio.wait_for(getattr(drivers[name], method)(target), timeout)
    except (PowerError, TimeoutError):
        raise
    except Exception as exc:
        plugin = drivers.plugin_of(name)
        log.warning(
            "power driver %r of plugin %r raised %s in %s()",
            name,
            plugin,
            type(exc).__name__,
            method,
            extra={"plugin": plugin, "driver": name},
            exc_info=exc,
        )
        raise PowerError(
            f"driver {name!r} of plugin {plugin!r} failed ({type(exc).__name__})"
        ) from exc


# -- configs ----------------------------------------------------------------------------


async def set_config(
    session: AsyncSession, device_id: int, data: dict[str, Any], drivers: dict[str, Any]
) -> PowerConfig:
    """Create or replace a device's power config, address and outlet stored canonical
    (:mod:`platform_scheduler.outlets`); 422 naming an unknown driver or a bad address."""
    await inventory.get_device(session, device_id)
    if data["driver"] not in drivers:
        raise invalid("driver", f"unknown driver; one of {', '.join(sorted(drivers))}")
    if data["driver"] == "snmp" and not (data.get("outlet") or "").strip().isdigit():
        raise invalid("outlet", "an snmp outlet is a number")
    try:
        address = outlets.canonical_address(data["driver"], data["address"])
    except ValueError as exc:
        raise invalid("address", str(exc)) from None
    if len(address) > 200:
        raise invalid("address", "at most 200 characters")
    config = await session.get(PowerConfig, device_id)
    if config is None:
        config = PowerConfig(device_id=device_id)
        session.add(config)
    config.driver = data["driver"]
    config.address = address
    config.outlet = outlets.canonical_outlet(data["driver"], data.get("outlet"))
    config.credentials = data.get("credentials")
    config.updated_at = utcnow()
    await session.flush()
    return config


async def get_config(session: AsyncSession, device_id: int) -> PowerConfig:
    """A device's power config, or ``NotFound``."""
    config = await session.get(PowerConfig, device_id)
    if config is None:
        await inventory.get_device(session, device_id)
        raise NotFound(f"device {device_id} has no power config")
    return config


async def delete_config(session: AsyncSession, device_id: int) -> None:
    """Remove a device's power config."""
    config = await get_config(session, device_id)
    await session.delete(config)
    await session.flush()


def resolve_credentials(name: str | None, settings: SchedulerSettings) -> dict[str, str | None]:
    """The secret behind a credentials reference; ``Conflict`` when it is not configured."""
    if not name:
        return {"username": None, "password": None, "community": None}
    cred = settings.credentials.get(name)
    if cred is not None:
        return {
            "username": cred.username,
            "password": cred.password.get_secret_value() if cred.password else None,
            "community": cred.community.get_secret_value() if cred.community else None,
        }
    raw = os.environ.get(ENV_PREFIX + name.upper().replace("-", "_"))
    if raw is None:
        raise Conflict(f"credentials {name!r} are not configured")
    user, sep, password = raw.partition(":")
    if sep:
        return {"username": user, "password": password, "community": None}
    return {"username": None, "password": None, "community": raw}


def target_for(config: PowerConfig, settings: SchedulerSettings) -> PowerTarget:
    """The driver's view of a config, with credentials resolved."""
    return PowerTarget(
        device_id=config.device_id,
        address=config.address,
        outlet=config.outlet,
        settings=settings,
        **resolve_credentials(config.credentials, settings),
    )


# -- guarded, audited actions -----------------------------------------------------------


async def holders(
    session: AsyncSession, config: PowerConfig, now: datetime
) -> list[dict[str, Any]]:
    """Current bookings of the device or of any device fed by the same outlet.

    Addresses and outlets are compared in their canonical forms (stored so by
    :func:`set_config`); a config without an outlet may share any outlet of its address.
    """
    same = select(PowerConfig.device_id).where(
        PowerConfig.driver == config.driver,
        PowerConfig.address == config.address,
    )
    if config.outlet is not None:
        same = same.where(or_(PowerConfig.outlet.is_(None), PowerConfig.outlet == config.outlet))
    device_ids = set((await session.scalars(same)).all()) | {config.device_id}
    rows = await session.execute(
        select(Booking.id, Booking.owner_id, Booking.owner_name, Slot.device_id)
        .join(Slot, Slot.booking_id == Booking.id)
        .where(
            Slot.device_id.in_(device_ids),
            or_(
                Booking.status == "active",
                (Booking.status == "approved") & (Booking.start_at <= now),
            ),
            Booking.start_at <= now,
            Booking.end_at > now,
        )
    )
    return [
        {"booking_id": b, "owner_id": o, "owner": n, "device_id": d} for b, o, n, d in rows.all()
    ]


async def _audit(
    ctx: PlatformContext,
    device_id: int,
    actor: str,
    action: str,
    forced: bool,
    result: str,
    detail: str,
) -> None:
    async with ctx.db.session() as session:
        session.add(
            PowerAudit(
                device_id=device_id,
                actor=actor,
                action=action,
                forced=forced,
                result=result,
                detail=detail[:2000],
            )
        )
    log.info(
        "power action",
        extra={"device_id": device_id, "actor": actor, "action": action, "result": result},
    )


async def power_action(
    ctx: PlatformContext,
    device_id: int,
    action: str,
    caller: Principal,
    *,
    force: bool = False,
    check: bool = True,
) -> dict[str, Any]:
    """Switch a device on, off or cycle it, refusing to cut a user off; always audited.

    409 when the device, or a device on the same outlet, is in someone else's current
    booking (admins may pass ``force``); 403 for a member who does not hold the device
    now; 502 when the BMC or PDU fails. ``check=False`` is for the scheduler's own jobs.
    """
    settings = ctx.settings_for("scheduler", SchedulerSettings)
    if action not in ACTIONS:
        raise invalid("action", f"one of {', '.join(ACTIONS)}")
    if force and not caller.is_admin:
        raise Forbidden("only admins may force a power action")
    now = utcnow()
    async with ctx.db.session() as session:
        config = await get_config(session, device_id)
        found = await holders(session, config, now) if check else []
        if (
            check
            and caller.role == "member"
            and not any(
                h["owner_id"] == caller.user_id and h["device_id"] == device_id for h in found
            )
        ):
            raise Forbidden("members switch only devices they hold a current booking of")
        others = [h for h in found if h["owner_id"] != caller.user_id]
        target = target_for(config, settings)
        drivers = collect_drivers(ctx.plugins)
    if others and not force:
        first = others[0]
        detail = (
            f"device {first['device_id']} is in use by {first['owner']} "
            f"(booking {first['booking_id']})"
        )
        await _audit(ctx, device_id, caller.username, action, force, "refused", detail)
        raise Conflict(f"refused: {detail}", bookings=[h["booking_id"] for h in others])
    if config.driver not in drivers:
        await _audit(ctx, device_id, caller.username, action, force, "failed", "no driver")
        raise Conflict(f"power driver {config.driver!r} is not available")
    try:
        await _drive(drivers, config.driver, action, target, settings.power_timeout)
    except (PowerError, TimeoutError) as exc:
        message = str(exc) or "timed out"
        await _audit(ctx, device_id, caller.username, action, force, "failed", message)
        raise PowerFailed(f"power {action} of device {device_id} failed: {message}") from None
    await _audit(ctx, device_id, caller.username, action, force, "ok", "")
    return {"device_id": device_id, "action": action, "result": "ok", "forced": force}


async def switch_configured(
    ctx: PlatformContext, device_ids: list[int], action: str, actor: Principal
) -> int:
    """Power the devices that have a config (the scheduler's own start/end/release actions).

    Switching off or cycling never cuts power to a device in use: a device is skipped (and
    the refusal audited) while it, or a device on the same outlet, is in a current booking.
    Failures are audited and logged, never raised; returns how many devices were switched.
    """
    done = 0
    now = utcnow()
    async with ctx.db.session() as session:
        configs = [c for d in device_ids if (c := await session.get(PowerConfig, d)) is not None]
        busy = {}
        if action != "on":
            for config in configs:
                found = await holders(session, config, now)
                if found:
                    busy[config.device_id] = found[0]
    for config in configs:
        device_id = config.device_id
        if device_id in busy:
            holder = busy[device_id]
            detail = (
                f"device {holder['device_id']} on the same outlet is in use by "
                f"{holder['owner']} (booking {holder['booking_id']})"
            )
            await _audit(ctx, device_id, actor.username, action, False, "refused", detail)
            continue
        try:
            await power_action(ctx, device_id, action, actor, check=False)
            done += 1
        except PlatformError as exc:
            log.warning("scheduled power %s of device %s failed: %s", action, device_id, exc)
    return done


READ_LIMITER = "scheduler_power_read_limiter"


def read_limiter(ctx: PlatformContext, settings: SchedulerSettings) -> SlidingWindowLimiter:
    """This process's per-user limiter of power-state reads (kept in ``ctx.state``)."""
    limiter = ctx.state.get(READ_LIMITER)
    if (
        limiter is None
        or limiter.limit != settings.power_reads_per_user
        or limiter.window != settings.power_read_window_seconds
    ):
        limiter = ctx.state[READ_LIMITER] = SlidingWindowLimiter(
            settings.power_reads_per_user, settings.power_read_window_seconds
        )
    return limiter


async def power_state(ctx: PlatformContext, device_id: int, caller: Principal) -> dict[str, Any]:
    """The device's power state as its driver reports it, for someone entitled to ask.

    Operators and admins may read any device; a member only one they hold a current
    booking of (403 otherwise), since each read makes the platform contact the BMC or PDU.
    Reads are limited per user (``power_reads_per_user`` per ``power_read_window_seconds``:
    429 with ``Retry-After``) and bounded by ``power_read_timeout`` (502 past it or when the
    driver fails).
    """
    settings = ctx.settings_for("scheduler", SchedulerSettings)
    async with ctx.db.session() as session:
        config = await get_config(session, device_id)
        if caller.role not in ("operator", "admin"):
            found = await holders(session, config, utcnow())
            if not any(
                h["owner_id"] == caller.user_id and h["device_id"] == device_id for h in found
            ):
                raise Forbidden(
                    "members read the power state only of devices they hold a current booking of"
                )
        target = target_for(config, settings)
    limiter = read_limiter(ctx, settings)
    key = str(caller.user_id)
    wait = limiter.retry_after(key)
    if wait:
        raise TooManyRequests(
            f"at most {settings.power_reads_per_user} power reads per "
            f"{settings.power_read_window_seconds}s; retry in {wait}s",
            retry_after=wait,
        )
    limiter.hit(key)
    drivers = collect_drivers(ctx.plugins)
    if config.driver not in drivers:
        raise Conflict(f"power driver {config.driver!r} is not available")
    try:
        state = await _drive(drivers, config.driver, "state", target, settings.power_read_timeout)
    except (PowerError, TimeoutError) as exc:
        message = str(exc) or f"timed out after {settings.power_read_timeout:g}s"
        raise PowerFailed(f"power state of device {device_id}: {message}") from None
    return {"device_id": device_id, "driver": config.driver, "state": state}


async def audit_log(session: AsyncSession, device_id: int, limit: int) -> list[PowerAudit]:
    """The latest power actions on a device, newest first."""
    rows = await session.scalars(
        select(PowerAudit)
        .where(PowerAudit.device_id == device_id)
        .order_by(PowerAudit.id.desc())
        .limit(limit)
    )
    return list(rows.all())
