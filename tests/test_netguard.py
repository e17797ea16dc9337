"""The address check itself: attack spellings refused, public addresses allowed. Connects to nothing."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from core.errors import ErrorCode, MediaError
from pipeline.config import FetchConfig
from pipeline.netguard import is_forbidden_ip, parse_host_literal, resolve_and_check


class FakeResolver:
    """Maps names to fixed answers and records every query; an unknown name fails like NXDOMAIN."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.queries: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.queries.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any real DNS query or connection from these tests is a bug: fail it loudly."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def config(answers: dict[str, list[str]] | None = None, allow: tuple[str, ...] = ()) -> FetchConfig:
    return FetchConfig(resolver=FakeResolver(answers or {}), allow_networks=allow)


# (host as it appears in a URL, what the refusal reason starts with)
ATTACKS = [
    ("127.0.0.1", "loopback"),
    ("127.1", "loopback"),
    ("127.0.1", "loopback"),
    ("2130706433", "loopback"),
    ("0x7f000001", "loopback"),
    ("0X7F000001", "loopback"),
    ("0177.0.0.1", "loopback"),
    ("0x7f.1", "loopback"),
    ("0x7f.0.0.0x1", "loopback"),
    ("127.0.0.1.", "loopback"),
    ("127.255.255.254", "loopback"),
    ("[::1]", "loopback"),
    ("::1", "loopback"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[0:0:0:0:0:ffff:7f00:1]", "loopback"),
    ("::ffff:7f00:1", "loopback"),
    ("[::127.0.0.1]", "loopback"),  # IPv4-compatible
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("[::ffff:0:7f00:1]", "loopback"),  # IPv4-translated
    ("localhost", "loopback"),
    ("LOCALHOST.", "loopback"),
    ("foo.localhost", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("0", "unspecified"),
    ("[::]", "unspecified"),
    ("169.254.169.254", "metadata"),
    ("2852039166", "metadata"),  # 169.254.169.254 as one integer
    ("0xa9fea9fe", "metadata"),
    ("[::ffff:169.254.169.254]", "metadata"),
    ("[fd00:ec2::254]", "metadata"),
    ("169.254.170.2", "metadata"),
    ("100.100.100.200", "metadata"),
    ("169.254.1.1", "link-local"),
    ("10.0.0.1", "private"),
    ("012.0.0.1", "private"),  # octal 10.0.0.1
    ("172.16.5.4", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("[::ffff:192.168.1.1]", "private"),
    ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
    ("100.64.0.1", "shared/CGNAT"),
    ("[fe80::1]", "link-local"),
    ("[fe80::1%25eth0]", "link-local"),  # zone id, URL-encoded
    ("fe80::1%eth0", "link-local"),
    ("[fc00::1]", "private"),
    ("[fd12:3456:789a::1]", "private"),
    ("224.0.0.1", "multicast"),
    ("[ff02::1]", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("198.18.0.1", "benchmarking"),
    ("240.0.0.1", "reserved"),
    ("192.0.0.192", "reserved"),
    ("192.0.2.1", "documentation"),
    ("[2001:db8::1]", "documentation"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "documentation"),  # Teredo, client 192.0.2.45
]


@pytest.mark.parametrize(("host", "reason"), ATTACKS)
def test_attack_hosts_are_refused(host: str, reason: str) -> None:
    cfg = config()
    with pytest.raises(MediaError) as info:
        resolve_and_check(host, 80, cfg)
    assert info.value.code == ErrorCode.URL_FORBIDDEN
    assert reason in info.value.message
    assert cfg.resolver is not None and cfg.resolver.queries == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(("host", "reason"), [a for a in ATTACKS if "localhost" not in a[0].lower()])
def test_literal_reasons(host: str, reason: str) -> None:
    ip = parse_host_literal(host)
    assert ip is not None
    found = is_forbidden_ip(ip)
    assert found is not None and found.startswith(reason)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0x", "0.0.0.0"),
        ("[::1]", "::1"),
        ("[fe80::1%eth0]", "fe80::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("93.184.216.34", "93.184.216.34"),
    ],
)
def test_parse_host_literal_spellings(host: str, expected: str) -> None:
    assert parse_host_literal(host) == ipaddress.ip_address(expected)


@pytest.mark.parametrize(
    "host",
    ["example.com", "1.2.3.4.5", "256.0.0.1", "4294967296", "08.0.0.1", "127.0.0.1 x", "[::1", "1.2.3.x", ""],
)
def test_parse_host_literal_rejects_non_literals(host: str) -> None:
    assert parse_host_literal(host) is None


@pytest.mark.parametrize("host", ["256.0.0.1", "08.0.0.1", "4294967296", "1.2.3.4.5"])
def test_malformed_numeric_hosts_are_never_resolved(host: str) -> None:
    cfg = config({host: ["93.184.216.34"]})
    with pytest.raises(MediaError) as info:
        resolve_and_check(host, 80, cfg)
    assert info.value.code == ErrorCode.INVALID_SOURCE
    assert cfg.resolver.queries == []  # type: ignore[union-attr]


@pytest.mark.parametrize("host", ["bad host", "127.0.0.1 x", "a..b", "-x.com", "[::1", "ex%41mple.com"])
def test_invalid_host_names(host: str) -> None:
    with pytest.raises(MediaError) as info:
        resolve_and_check(host, 80, config())
    assert info.value.code == ErrorCode.INVALID_SOURCE


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700::1", "2a00:1450:4001::1", "::ffff:93.184.216.34"],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_forbidden_ip(ipaddress.ip_address(address)) is None
    assert resolve_and_check(address, 443, config()) == [str(ipaddress.ip_address(address))]


def test_public_6to4_and_nat64_follow_the_embedded_address() -> None:
    assert is_forbidden_ip(ipaddress.ip_address("2002:5db8:d822::1")) is None
    assert is_forbidden_ip(ipaddress.ip_address("64:ff9b::5db8:d822")) is None


def test_metadata_names_are_refused_without_resolving() -> None:
    for host in ("metadata.google.internal", "METADATA.GOOGLE.INTERNAL.", "metadata.goog", "instance-data"):
        cfg = config({host.lower().rstrip("."): ["93.184.216.34"]})
        with pytest.raises(MediaError) as info:
            resolve_and_check(host, 80, cfg)
        assert info.value.code == ErrorCode.URL_FORBIDDEN
        assert "metadata" in info.value.message
        assert cfg.resolver.queries == []  # type: ignore[union-attr]


def test_name_resolving_to_public_addresses_is_allowed() -> None:
    cfg = config({"videos.example": ["93.184.216.34", "2606:4700::1", "93.184.216.34"]})
    assert resolve_and_check("videos.example", 443, cfg) == ["93.184.216.34", "2606:4700::1"]
    assert resolve_and_check("Videos.Example.", 443, cfg) == ["93.184.216.34", "2606:4700::1"]


@pytest.mark.parametrize(
    "answers",
    [
        ["93.184.216.34", "10.0.0.5"],
        ["10.0.0.5", "93.184.216.34"],
        ["2606:4700::1", "::1"],
        ["93.184.216.34", "::ffff:169.254.169.254"],
        ["1.1.1.1", "127.0.0.1"],
    ],
)
def test_any_internal_answer_refuses_the_name(answers: list[str]) -> None:
    with pytest.raises(MediaError) as info:
        resolve_and_check("mixed.example", 80, config({"mixed.example": answers}))
    assert info.value.code == ErrorCode.URL_FORBIDDEN
    assert "mixed.example" in info.value.message


def test_resolution_failures() -> None:
    cases: list[dict[str, list[str]]] = [{}, {"nothing.example": []}, {"nothing.example": ["not-an-ip"]}]
    for answers in cases:
        with pytest.raises(MediaError) as info:
            resolve_and_check("nothing.example", 80, config(answers))
        assert info.value.code == ErrorCode.FETCH_FAILED


def test_system_resolver_answers_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        calls.append(host)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00::1", port, 0, 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(MediaError) as info:
        resolve_and_check("internal.example", 80, FetchConfig())
    assert info.value.code == ErrorCode.URL_FORBIDDEN
    assert "fd00::1" in info.value.message
    assert calls == ["internal.example"]
    # A literal never reaches the system resolver (the patched one would record it).
    assert resolve_and_check("93.184.216.34", 80, FetchConfig()) == ["93.184.216.34"]
    assert calls == ["internal.example"]


def test_allow_networks_make_exceptions() -> None:
    loopback = ("127.0.0.0/8",)
    assert is_forbidden_ip(ipaddress.ip_address("127.0.0.1"), loopback) is None
    assert is_forbidden_ip(ipaddress.ip_address("::ffff:127.0.0.1"), loopback) is None
    assert is_forbidden_ip(ipaddress.ip_address("::1"), loopback) == "loopback"
    assert is_forbidden_ip(ipaddress.ip_address("10.0.0.1"), loopback) == "private"
    assert resolve_and_check("127.1", 8000, config(allow=loopback)) == ["127.0.0.1"]
    assert resolve_and_check("localhost", 8000, config(allow=loopback)) == ["127.0.0.1"]
    lan = ("10.1.0.0/16", "fd00:1::/32")
    cfg = config({"nas.lan": ["10.1.2.3", "fd00:1::7"]}, allow=lan)
    assert resolve_and_check("nas.lan", 80, cfg) == ["10.1.2.3", "fd00:1::7"]
    with pytest.raises(MediaError):
        resolve_and_check("10.2.0.1", 80, cfg)
    # An allowance for one network does not open metadata names.
    with pytest.raises(MediaError):
        resolve_and_check("metadata.google.internal", 80, config(allow=("0.0.0.0/0",)))


def test_malformed_allow_network_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        is_forbidden_ip(ipaddress.ip_address("8.8.8.8"), ("not-a-network",))
