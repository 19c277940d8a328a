"""Canonical power addresses and outlets, so that two spellings of one outlet compare equal.

Pure functions, no I/O (the data migration ``scheduler_0002_power_addresses`` uses them too).
The guard that refuses to cut power to someone else's booked device finds the devices on
the same outlet by comparing the stored canonical forms, so a trailing slash, an upper-case
scheme or host, a default port, ``localhost`` for ``127.0.0.1`` or ``01`` for outlet ``1``
never make one outlet look like two.

- An address with a scheme (``https://bmc.example/``, every Redfish address): scheme and
  host lower-cased, a trailing dot of the host dropped, the scheme's default port dropped
  (80, 443), the path normalised (``//``, ``.``, ``..`` and a trailing ``/`` removed).
  User info, a query or a fragment is refused: credentials are a reference of their own.
- An address without a scheme (``pdu-3``, ``10.0.0.9:1161``, every SNMP address): the same
  host rules, the port kept unless it is the driver's default (161 for SNMP).
- Hosts: IP addresses in their compressed form (an IPv4-mapped IPv6 address as IPv4);
  ``localhost`` and ``::1`` are written ``127.0.0.1`` (the loopback host, however spelled).
- Outlets: an empty one is ``None`` (the driver's default); an SNMP outlet is a number
  without leading zeros; a Redfish outlet (a system id or path) is the full
  ``/redfish/v1/Systems/<id>`` path without a trailing ``/``.
- The guard takes a config without an outlet (a BMC's first system, say) as possibly
  sharing any outlet of its address: refusing too much beats cutting a user off.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from urllib.parse import urlsplit

__all__ = ["DEFAULT_PORTS", "canonical_address", "canonical_outlet"]

DEFAULT_PORTS = {"http": 80, "https": 443, "snmp": 161}
"""Ports left out of a canonical address: a URL scheme's, or a driver's (``snmp``)."""

BUILTIN = ("redfish", "snmp")
LOOPBACK = "127.0.0.1"
REDFISH_SYSTEMS = "/redfish/v1/Systems/"
_HOST = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?")


def _host(raw: str) -> str:
    host = raw.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        host = host.rstrip(".")
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise ValueError(f"{raw!r} is not a host name or IP address") from None
        if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
            return LOOPBACK
        if not _HOST.fullmatch(host):
            raise ValueError(f"{raw!r} is not a host name or IP address") from None
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback and (ip.version == 6 or ip == ipaddress.IPv4Address(LOOPBACK)):
        return LOOPBACK
    return ip.compressed


def _netloc(host: str, port: int | None, default: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None or port == default else f"{shown}:{port}"


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"port {raw!r} is not a number from 1 to 65535")
    return int(raw)


def canonical_address(driver: str, address: str) -> str:
    """The canonical spelling of a power ``address`` for ``driver`` (see module).

    ``ValueError`` saying what is wrong when a built-in driver's address is not a URL or
    ``host[:port]``; another driver's address that is neither is kept as given (stripped).
    """
    try:
        return _canonical_address(driver, address)
    except ValueError:
        if driver in BUILTIN:
            raise
        return address.strip()


def _canonical_address(driver: str, address: str) -> str:
    text = address.strip()
    if not text:
        raise ValueError("an address is required")
    if "://" in text:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if not scheme:
            raise ValueError("a URL needs a scheme (https://...)")
        if parts.username is not None or parts.password is not None:
            raise ValueError("no user or password in the address; use credentials")
        if parts.query or parts.fragment:
            raise ValueError("no query or fragment in the address")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        if not parts.hostname:
            raise ValueError("a URL needs a host")
        path = parts.path
        if path:
            path = posixpath.normpath("/" + path.lstrip("/"))
            path = "" if path == "/" else path
        netloc = _netloc(_host(parts.hostname), port, DEFAULT_PORTS.get(scheme))
        return f"{scheme}://{netloc}{path}"
    if driver == "redfish":
        raise ValueError("a Redfish address is a URL (https://bmc.example)")
    if "/" in text or "@" in text:
        raise ValueError("an address without a scheme is host or host:port")
    default = DEFAULT_PORTS.get(driver)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError("an address without a scheme is host or host:port")
        port = _port(rest[1:]) if rest else None
    elif text.count(":") == 1:
        host, _, raw_port = text.partition(":")
        port = _port(raw_port)
    else:  # a host name, an IPv4 address or a bare IPv6 address
        host, port = text, None
    return _netloc(_host(host), port, default)


def canonical_outlet(driver: str, outlet: str | None) -> str | None:
    """The canonical spelling of an outlet (see module); ``None`` stays ``None``."""
    text = (outlet or "").strip()
    if not text:
        return None
    if driver == "snmp" and text.isdigit():
        return str(int(text))
    if driver == "redfish":
        path = text if text.startswith("/") else REDFISH_SYSTEMS + text
        return posixpath.normpath("/" + path.lstrip("/"))
    return text
