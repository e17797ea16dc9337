"""Refuse URLs whose host is, or resolves to, an internal address (SSRF protection).

Pure stdlib and no network access except the resolver the caller chose. `fetch.py` calls
`resolve_and_check` at connect time and then connects to the vetted address, never to the name again,
so a DNS answer that changes between check and use (rebinding) cannot reach an internal service.

The address table is our own rather than `ipaddress`'s `is_private`/`is_global` flags: those changed
between Python releases (e.g. 6to4 and NAT64 addresses count as global on 3.11), and a security check
must not depend on the interpreter's patch level. The flags are still consulted last, as a backstop.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from typing import TypeAlias

from core.errors import ErrorCode, MediaError
from pipeline.config import FetchConfig

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

# Order matters: the first matching network gives the reason (metadata before link-local).
_FORBIDDEN_V4: tuple[tuple[str, str], ...] = (
    ("169.254.169.254/32", "metadata"),  # AWS, GCP, Azure, OpenStack instance metadata
    ("169.254.170.2/32", "metadata"),  # AWS ECS task credentials
    ("100.100.100.200/32", "metadata"),  # Alibaba Cloud metadata
    ("168.63.129.16/32", "metadata"),  # Azure wireserver: public-looking, platform-internal
    ("0.0.0.0/8", "unspecified"),  # "this network": 0.0.0.0 reaches the local host on Linux
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared/CGNAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),  # IETF protocol assignments (also Oracle Cloud metadata 192.0.0.192)
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),  # deprecated 6to4 relay anycast
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)
_FORBIDDEN_V6: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fd00:ec2::254/128", "metadata"),  # AWS instance metadata over IPv6
    ("64:ff9b:1::/48", "private"),  # local-use NAT64 (RFC 8215)
    ("100::/64", "reserved"),  # discard-only
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("2001::/23", "reserved"),  # IETF protocol assignments (Teredo 2001::/32 is unwrapped first)
    ("fc00::/7", "private"),  # unique local
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),  # deprecated, still routed on some networks
    ("ff00::/8", "multicast"),
)
_TABLE_V4 = tuple((ipaddress.IPv4Network(net), reason) for net, reason in _FORBIDDEN_V4)
_TABLE_V6 = tuple((ipaddress.IPv6Network(net), reason) for net, reason in _FORBIDDEN_V6)

# IPv6 forms that carry an IPv4 address in their low 32 bits and may reach it through a translator.
_EMBEDDED_V4_LOW32: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (ipaddress.IPv6Network("64:ff9b::/96"), "NAT64"),
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), "IPv4-translated"),
    (ipaddress.IPv6Network("::/96"), "IPv4-compatible"),
)

# Names refused without asking any resolver: cloud metadata endpoints.
_METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
# A label inet_aton would read as a number: decimal, octal (leading 0) or hex (0x, even with no digits).
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")  # used with fullmatch: "$" would accept "1\n"


@functools.lru_cache(maxsize=64)
def _allowed(allow_networks: tuple[str, ...]) -> tuple[_Network, ...]:
    # A malformed CIDR is a configuration bug: ValueError, reported as internal_error by the caller.
    return tuple(ipaddress.ip_network(net, strict=False) for net in allow_networks)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[ipaddress.IPv4Address, str]]:
    """IPv4 addresses an IPv6 address can lead to (mapped, compatible, 6to4, NAT64, Teredo)."""
    if int(ip) <= 1:
        return []  # :: and ::1 are themselves, not IPv4-compatible 0.0.0.0/0.0.0.1
    if ip.ipv4_mapped is not None:
        return [(ip.ipv4_mapped, "IPv4-mapped")]
    if ip.sixtofour is not None:
        return [(ip.sixtofour, "6to4")]
    if ip.teredo is not None:
        server, client = ip.teredo
        return [(client, "Teredo client"), (server, "Teredo server")]
    for net, form in _EMBEDDED_V4_LOW32:
        if ip in net:
            return [(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), form)]
    return []


def _table_reason(ip: IPAddress) -> str | None:
    table: tuple[tuple[_Network, str], ...] = _TABLE_V4 if ip.version == 4 else _TABLE_V6
    for net, reason in table:
        if ip in net:
            return reason
    return None


def _in_any(ip: IPAddress, networks: tuple[_Network, ...]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def is_forbidden_ip(ip: IPAddress, allow_networks: tuple[str, ...] = ()) -> str | None:
    """Why `ip` must not be contacted ("loopback", "private", "metadata", ...), or None if it may.

    An address inside one of `allow_networks` (CIDR strings) is allowed; for an IPv6 form that embeds an
    IPv4 address, an allowed embedded address counts too, so "127.0.0.0/8" also admits ::ffff:127.0.0.1.
    """
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        ip = ipaddress.IPv6Address(int(ip))  # the zone id picks an interface, not an address
    if _in_any(ip, _allowed(tuple(allow_networks))):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        # Judge a translator address by where it leads: ::ffff:127.0.0.1 is loopback, not "IPv6".
        embedded = _embedded_ipv4(ip)
        for v4, form in embedded:
            inner = is_forbidden_ip(v4, allow_networks)
            if inner is not None:
                return f"{inner} via {form} {v4}"
        if embedded:
            return None
    reason = _table_reason(ip)
    if reason is None and not ip.is_global:
        reason = "reserved"  # a backstop for anything the stdlib does not consider globally routable
    return reason


def _parse_ipv4_number(label: str) -> int | None:
    """One inet_aton component: 0x.. hex, 0.. octal, else decimal (None if not a number)."""
    try:
        if label.startswith("0x"):
            return int(label[2:] or "0", 16)
        if len(label) > 1 and label.startswith("0"):
            return int(label, 8)
        return int(label, 10)
    except ValueError:
        return None


def _parse_legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """inet_aton's grammar (a, a.b, a.b.c, a.b.c.d in any base), reimplemented so that no platform
    quirk (glibc accepts trailing text after a space) decides what counts as an address."""
    labels = host.split(".")
    if not 1 <= len(labels) <= 4 or not all(_NUMERIC_LABEL.fullmatch(label) for label in labels):
        return None
    numbers = [_parse_ipv4_number(label) for label in labels]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    *head, last = values
    if any(n > 0xFF for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for index, n in enumerate(head):
        value |= n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def parse_host_literal(host: str) -> IPAddress | None:
    """The IP address `host` spells, in any form a resolver would accept as a literal; None for a name.

    Handles "[::1]", zone ids ("fe80::1%eth0", "%25eth0"), "2130706433", "0x7f000001", "0177.0.0.1",
    "127.1", "0x7f.1" and a trailing dot. Never touches the network.
    """
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        text = text.split("%", 1)[0]  # the zone id picks an interface, not an address
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    if text.endswith("."):
        text = text[:-1]
    return _parse_legacy_ipv4(text)


def _looks_numeric(host: str) -> bool:
    labels = host.split(".")
    return bool(labels) and all(_NUMERIC_LABEL.fullmatch(label) for label in labels)


def _forbidden(host: str, address: str, reason: str) -> MediaError:
    if parse_host_literal(host) is not None:
        message = f"refusing to fetch from {host}: {address} is a {reason} address"
    else:
        message = f"refusing to fetch from {host}: it resolves to {address}, a {reason} address"
    return MediaError(ErrorCode.URL_FORBIDDEN, message)


def _system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _resolve(host: str, port: int, config: FetchConfig) -> list[str]:
    resolver = config.resolver or _system_resolve
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
        raise MediaError(ErrorCode.FETCH_FAILED, f"cannot resolve {host}: {exc}") from exc
    if not addresses:
        raise MediaError(ErrorCode.FETCH_FAILED, f"cannot resolve {host}: no addresses")
    return addresses


def _check_all(host: str, addresses: list[str], config: FetchConfig) -> list[str]:
    vetted: list[str] = []
    for address in addresses:
        try:
            # Strict parsing: resolver answers are passed to connect(), so they must be canonical.
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError as exc:
            raise MediaError(ErrorCode.FETCH_FAILED, f"{host} resolved to a non-address {address!r}") from exc
        reason = is_forbidden_ip(ip, config.allow_networks)
        if reason is not None:
            # One bad answer refuses the host: the client could have been sent to any of them.
            raise _forbidden(host, str(ip), reason)
        if str(ip) not in vetted:
            vetted.append(str(ip))
    return vetted


def resolve_and_check(host: str, port: int, config: FetchConfig) -> list[str]:
    """The addresses `host` may be contacted at, all checked; raises MediaError(URL_FORBIDDEN) if any
    address is internal (or FETCH_FAILED if the name does not resolve).

    IP literals are checked without DNS; "localhost" and "*.localhost" are loopback without DNS
    (RFC 6761); cloud metadata names are refused outright.
    """
    literal = parse_host_literal(host)
    if literal is not None:
        return _check_all(host, [str(literal)], config)
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") or ":" in name or not _HOST_NAME.fullmatch(name):
        raise MediaError(ErrorCode.INVALID_SOURCE, f"not a valid host name: {host!r}")
    if _looks_numeric(name):
        # inet_aton-style but out of range ("256.1", "08.0.0.1"): never let a resolver guess.
        raise MediaError(ErrorCode.INVALID_SOURCE, f"malformed IP address: {host!r}")
    if name in _METADATA_NAMES:
        raise MediaError(ErrorCode.URL_FORBIDDEN, f"refusing to fetch from {host}: a metadata host name")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return _check_all(host, ["127.0.0.1"], config)
    return _check_all(host, _resolve(name, port, config), config)
