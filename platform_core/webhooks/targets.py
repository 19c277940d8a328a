"""Where webhooks may be sent: public addresses only, unless ``[core.webhooks] allow`` says so.

A webhook URL is checked twice:

* at registration (:func:`check_url`): an IP literal in any spelling (``169.254.169.254``,
  ``2852039166``, ``0251.0376.0251.0376``, ``0xa9fea9fe``, ``[::ffff:169.254.169.254]``),
  a cloud metadata name (``metadata.google.internal``) or ``localhost`` (as ``127.0.0.1``)
  is refused when its address is not allowed, and so is a name that resolves to such an
  address right now;
* at every connection (:class:`GuardedBackend`, the network backend of the delivery
  client): the host is resolved, **every** address is checked, and the connection is made
  to a checked address, never by name again, so a DNS answer that changed since
  registration (or between two lookups: DNS rebinding) cannot reach a refused address.

Refused by default: loopback, private (RFC 1918, ``fc00::/7``), link-local (``169.254/16``
with the metadata address, ``fe80::/10``), shared (``100.64/10``), unspecified, multicast,
reserved and documentation ranges: everything :attr:`ipaddress.IPv4Address.is_global`
does not call global, plus IPv6 addresses that embed a refused IPv4 one (IPv4-mapped,
IPv4-compatible, 6to4, NAT64 ``64:ff9b::/96``, Teredo).

``[core.webhooks] allow`` lists exceptions: networks (``127.0.0.0/8``, ``10.1.2.3``,
``fd00::/8``) whose addresses are accepted, and host names (``hooks.corp.example``) that
are accepted whatever they resolve to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

log = logging.getLogger("platform_core.webhooks")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
    }
)
"""Cloud metadata service names: refused by name unless ``allow`` names them."""

LOOPBACK = ipaddress.IPv4Address("127.0.0.1")

NOT_PUBLIC = (
    ipaddress.IPv4Network("192.0.0.0/24"),  # IETF protocol assignments (Oracle metadata .192)
    ipaddress.IPv4Network("198.18.0.0/15"),  # benchmarking
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use NAT64
)
"""Ranges refused besides those :mod:`ipaddress` does not call global."""

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
RESOLVE_TIMEOUT = 5.0


class TargetRefused(httpcore.ConnectError):
    """A webhook target whose address is not allowed (raised before any socket connects)."""


def _inet_aton_part(text: str) -> int | None:
    """One part of a C ``inet_aton`` address: decimal, ``0``-prefixed octal or ``0x`` hex."""
    if not text:
        return None
    try:
        if text[:2].lower() == "0x":
            return int(text[2:], 16) if text[2:] else 0
        if len(text) > 1 and text[0] == "0":
            return int(text[1:], 8)
        return int(text, 10) if text.isdigit() else None
    except ValueError:
        return None


def parse_ipv4_loose(host: str) -> ipaddress.IPv4Address | None:
    """``host`` read as ``inet_aton`` reads it (``2852039166``, ``0xa9.254.0251.254``,
    ``169.254.43518``...), or None when it is not such a number."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(p.isascii() for p in parts):
        return None
    values = [_inet_aton_part(p) for p in parts]
    if any(v is None for v in values):
        return None
    nums = [int(v) for v in values if v is not None]
    # a.b.c.d: four bytes; a.b.c: c is 16 bits; a.b: b is 24 bits; a: 32 bits.
    last_bits = 32 - 8 * (len(nums) - 1)
    if any(n > 255 for n in nums[:-1]) or nums[-1] >= 1 << last_bits:
        return None
    value = 0
    for n in nums[:-1]:
        value = value << 8 | n
    value = value << last_bits | nums[-1]
    return ipaddress.IPv4Address(value)


def ip_literal(host: str) -> IPAddress | None:
    """The address a host written as an IP literal stands for (any spelling), else None."""
    text = host.strip().rstrip(".") if host else ""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # an IPv6 zone id (fe80::1%eth0)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    return parse_ipv4_loose(text)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """True for a globally routable unicast address (and no refused IPv4 inside an IPv6 one)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public(ip.ipv4_mapped)
        inner = _embedded_ipv4(ip)
        if inner is not None and not is_public(inner):
            return False
    if any(ip.version == net.version and ip in net for net in NOT_PUBLIC):
        return False
    return bool(
        ip.is_global
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_link_local
        and not ip.is_loopback
        and not ip.is_private
        and not ip.is_unspecified
    )


def normalise_host(host: str) -> str:
    """A host name compared case-insensitively, without brackets or a trailing dot."""
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return text.rstrip(".")


def parse_allow(entries: Iterable[str]) -> tuple[tuple[IPNetwork, ...], frozenset[str]]:
    """Split ``allow`` entries into networks and host names; ``ValueError`` for a bad one."""
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for raw in entries:
        entry = raw.strip()
        if not entry:
            raise ValueError("an empty entry")
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        name = normalise_host(entry)
        if (
            "/" in name
            or ":" in name
            or not all(part and (part.replace("-", "").isalnum()) for part in name.split("."))
        ):
            raise ValueError(f"{raw!r} is neither a network (CIDR or address) nor a host name")
        hosts.add(name)
    return tuple(networks), frozenset(hosts)


@dataclass(frozen=True)
class TargetPolicy:
    """The allowed webhook targets: public addresses plus the ``allow`` exceptions."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_allow(cls, entries: Iterable[str]) -> TargetPolicy:
        """The policy of an ``[core.webhooks] allow`` list."""
        networks, hosts = parse_allow(entries)
        return cls(networks, hosts)

    def host_allowed(self, host: str) -> bool:
        """True when ``host`` is named in ``allow`` (accepted whatever it resolves to)."""
        return normalise_host(host) in self.hosts

    def address_allowed(self, ip: IPAddress) -> bool:
        """True for a public address or one inside an allowed network."""
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if mapped is not None and self.address_allowed(mapped):
            return True
        return is_public(ip) or any(ip.version == n.version and ip in n for n in self.networks)


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to for a TCP connection (the system resolver)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _refused(host: str, ip: IPAddress | None = None) -> TargetRefused:
    what = f"{host} ({ip})" if ip is not None and str(ip) != host else host
    return TargetRefused(
        f"{what} is not a public address; list it in [core.webhooks] allow to send to it"
    )


async def checked_addresses(
    policy: TargetPolicy, host: str, port: int, *, timeout: float | None = None
) -> list[IPAddress]:
    """The addresses to connect to for ``host``, each allowed; ``TargetRefused`` otherwise.

    An IP literal (any spelling) is checked as is; a name is resolved and every address
    it resolves to must be allowed (one refused address refuses the name), unless the name
    itself is in ``allow``. Resolution failures raise ``httpcore.ConnectError``.
    """
    name = normalise_host(host)
    literal = ip_literal(name)
    if literal is not None:
        if not policy.address_allowed(literal) and not policy.host_allowed(name):
            raise _refused(host, literal)
        return [literal]
    named_ok = policy.host_allowed(name)
    if not named_ok and name in METADATA_HOSTS:
        raise _refused(host)
    is_localhost = name in ("localhost", "ip6-localhost") or name.endswith(".localhost")
    if is_localhost and not named_ok and not policy.address_allowed(LOOPBACK):
        # Loopback by definition (RFC 6761), whatever a resolver says: as 127.0.0.1.
        raise _refused(host, LOOPBACK)
    try:
        async with asyncio.timeout(timeout or RESOLVE_TIMEOUT):
            found = await resolve(name, port)
    except (OSError, TimeoutError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    addresses: list[IPAddress] = []
    for text in found:
        ip = ip_literal(text)
        if ip is None:
            raise httpcore.ConnectError(f"cannot resolve {host}: odd address {text!r}")
        if not named_ok and not policy.address_allowed(ip):
            raise _refused(host, ip)
        addresses.append(ip)
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {host}: no address")
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to allowed, already-checked addresses.

    TLS still verifies the certificate against the URL's host name (httpcore passes it as
    ``server_hostname``); only the TCP connection goes to the checked IP address.
    """

    def __init__(self, policy: TargetPolicy, inner: httpcore.AsyncNetworkBackend | None = None):
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve ``host``, check every address, connect to the first one that answers."""
        addresses = await checked_addresses(self.policy, host, port, timeout=timeout)
        error: Exception | None = None
        for ip in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        """Never: webhooks go over TCP only."""
        raise TargetRefused("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        """Sleep as the inner backend does."""
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with a :class:`GuardedBackend`: no proxy, no unix socket."""

    def __init__(self, policy: TargetPolicy, limits: httpx.Limits) -> None:
        # The parent keeps all its state in ``_pool`` (its request, enter, exit and close
        # methods use nothing else); build that pool here with the guarded backend rather
        # than let the parent build one (and a costly SSL context) only to replace it.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),  # SSL_CERT_FILE/DIR still apply
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )


def refusal(exc: BaseException) -> TargetRefused | None:
    """The :class:`TargetRefused` behind an httpx error, if that is what it is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TargetRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


async def check_url(policy: TargetPolicy, url: str) -> str | None:
    """Why ``url``'s host is not an allowed target right now, or None when it is.

    Literal addresses and refused names are checked without the network; other names are
    resolved (bounded by :data:`RESOLVE_TIMEOUT`) and refused when any address is not
    allowed. A name that does not resolve (yet) is accepted: every connection is checked.
    """
    parts = httpx.URL(url)
    host = parts.host
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        await checked_addresses(policy, host, port)
    except TargetRefused as exc:
        return str(exc)
    except httpcore.ConnectError as exc:
        log.info("webhook target %s does not resolve now: %s", host, exc)
    return None
