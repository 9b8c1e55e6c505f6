"""The egress policy: what is refused, what allow unlocks, and that we dial what we checked.

Nothing here leaves the machine: public addresses are only passed to ``check_address`` or
returned by injected resolvers; every real connection goes to a loopback server started here.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest

from connhub.config import Settings
from connhub.errors import ConfigurationError
from connhub.kit.egress import EgressBlocked, EgressPolicy, ResolvedTarget
from support.dns import fake_dns


async def no_lookup(host: str, port: int) -> list[str]:
    raise AssertionError(f"resolver must not be called for {host!r}")


BLOCKED_ADDRESSES = [
    ("169.254.169.254", "cloud metadata"),
    ("fd00:ec2::254", "cloud metadata"),
    ("169.254.0.1", "link-local"),
    ("169.254.255.254", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%1", "link-local"),
    ("febf:ffff::1", "link-local"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - a string under test, nothing binds
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.0.1", "private"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.254", "CGNAT"),
    ("fc00::1", "private"),
    ("fd12:3456:789a::1", "private"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "non-public"),  # TEST-NET-1 documentation range
    ("198.18.0.1", "non-public"),  # benchmarking range
    ("2001:db8::1", "non-public"),  # documentation prefix
    ("::ffff:127.0.0.1", "IPv4-mapped 127.0.0.1: loopback"),
    ("::ffff:7f00:1", "IPv4-mapped 127.0.0.1: loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped 169.254.169.254: cloud metadata"),
    ("::ffff:10.1.2.3", "IPv4-mapped 10.1.2.3: private"),
    ("::ffff:0.0.0.0", "IPv4-mapped 0.0.0.0: unspecified"),
    ("64:ff9b::7f00:1", "NAT64 127.0.0.1: loopback"),
    ("64:ff9b::169.254.169.254", "NAT64 169.254.169.254: cloud metadata"),
    ("64:ff9b::c0a8:101", "NAT64 192.168.1.1: private"),
    ("2002:7f00:1::1", "6to4 127.0.0.1: loopback"),
    ("2002:a9fe:a9fe::1", "6to4 169.254.169.254: cloud metadata"),
    ("2002:a00:1::", "6to4 10.0.0.1: private"),
    ("::7f00:1", "reserved"),  # deprecated IPv4-compatible form
]


@pytest.mark.parametrize(("ip", "reason"), BLOCKED_ADDRESSES)
def test_check_address_blocks_by_default(ip: str, reason: str) -> None:
    with pytest.raises(EgressBlocked) as info:
        EgressPolicy().check_address(ip)
    assert reason in info.value.reason
    assert "egress policy blocked" in str(info.value)


@pytest.mark.parametrize(("ip", "reason"), BLOCKED_ADDRESSES)
async def test_resolve_blocks_literal_without_a_lookup(ip: str, reason: str) -> None:
    host = f"[{ip}]" if ":" in ip else ip
    with pytest.raises(EgressBlocked) as info:
        await EgressPolicy(resolver=no_lookup).resolve(host, 5432)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",  # mapped public: same destination as 8.8.8.8
        "64:ff9b::808:808",  # NAT64 of a public address
        "2002:808:808::1",  # 6to4 of a public address
    ],
)
def test_public_addresses_pass_the_check(ip: str) -> None:
    EgressPolicy().check_address(ip)


NUMERIC_SPELLINGS = [
    "2130706433",  # decimal 127.0.0.1
    "0x7f000001",  # hex
    "0X7F000001",
    "017700000001",  # octal integer
    "0177.0.0.1",  # octal first octet
    "127.0.0.01",  # leading zero
    "127.1",  # short form
    "127.0.1",
    "0x7f.1",
    "0x7f.0.0.1",
    "127.0.0.1.",  # trailing dot
    "3232235777",  # decimal 192.168.1.1
    "0xa9fea9fe",  # hex metadata
    "1.2.3.4.5",
    "0x",
]


@pytest.mark.parametrize("host", NUMERIC_SPELLINGS)
async def test_numeric_host_spellings_are_refused_even_when_allowed(host: str) -> None:
    policy = EgressPolicy(["0.0.0.0/0", "::/0"], resolver=no_lookup)
    with pytest.raises(EgressBlocked) as info:
        await policy.resolve(host, 80)
    assert info.value.reason == "non-canonical numeric host"
    with pytest.raises(EgressBlocked):
        policy.resolve_sync(host, 80)


@pytest.mark.parametrize(
    "host",
    [
        "",
        " ",
        "db.example.com ",
        "db example.com",
        "db.example.com\n",
        "db\t.example.com",
        "user@db.example.com",
        "db.example.com/path",
        "db.example.com\\x",
        "db.example.com?x",
        "db.example.com#x",
        "[::1",
        "::1]",
        "[127.0.0.1]",
        "[db.example.com]",
        "-db.example.com",
        "db..example.com",
        "a" * 64 + ".example.com",
        "db%2eexample.com",
    ],
)
async def test_malformed_hosts_are_refused(host: str) -> None:
    with pytest.raises(EgressBlocked) as info:
        await EgressPolicy(["0.0.0.0/0"], resolver=no_lookup).resolve(host, 443)
    assert info.value.reason == "invalid host"


async def test_userinfo_is_not_echoed_in_the_error() -> None:
    with pytest.raises(EgressBlocked) as info:
        await EgressPolicy(resolver=no_lookup).resolve("admin:Sup3rSecret@db.example.com", 5432)
    assert "Sup3rSecret" not in str(info.value)
    assert "Sup3rSecret" not in info.value.host
    assert info.value.host == "db.example.com"


@pytest.mark.parametrize("port", [0, -1, 65536, True])
async def test_invalid_ports_are_refused(port: int) -> None:
    with pytest.raises(EgressBlocked) as info:
        await EgressPolicy(["0.0.0.0/0"], resolver=no_lookup).resolve("8.8.8.8", port)
    assert info.value.reason == "invalid port"


async def test_bracketed_ipv6_literal_is_unwrapped() -> None:
    target = await EgressPolicy(["::1"], resolver=no_lookup).resolve("[::1]", 5432)
    assert target == ResolvedTarget(host="[::1]", port=5432, address="::1", addresses=("::1",))


def test_allow_by_cidr() -> None:
    policy = EgressPolicy(["10.0.0.0/8", "fd00:1234::/32"])
    policy.check_address("10.20.30.40")
    policy.check_address("fd00:1234::5")
    policy.check_address("::ffff:10.0.0.1")  # the mapped form reaches the same socket
    for still_blocked in ("192.168.1.1", "172.16.0.1", "127.0.0.1", "fd00:1235::5"):
        with pytest.raises(EgressBlocked):
            policy.check_address(still_blocked)


def test_allow_by_bare_ip_is_exactly_that_address() -> None:
    policy = EgressPolicy(["127.0.0.1", "[::1]"])
    policy.check_address("127.0.0.1")
    policy.check_address("::1")
    with pytest.raises(EgressBlocked, match="loopback"):
        policy.check_address("127.0.0.2")


async def test_allow_by_hostname_trusts_whatever_it_resolves_to() -> None:
    calls: list[str] = []
    dns = fake_dns(
        {"db.internal": ["10.0.0.5", "127.0.0.1"], "other.internal": ["10.0.0.6"]}, calls
    )
    policy = EgressPolicy(["DB.Internal."], resolver=dns)

    target = await policy.resolve("db.internal", 5432)
    assert target.address == "10.0.0.5"
    assert target.addresses == ("10.0.0.5", "127.0.0.1")
    assert (await policy.resolve("Db.Internal.", 5432)).address == "10.0.0.5"
    with pytest.raises(EgressBlocked, match="private"):
        await policy.resolve("other.internal", 5432)
    assert calls == ["db.internal", "db.internal", "other.internal"]


async def test_metadata_needs_an_exact_allow_entry() -> None:
    dns = fake_dns({"trusted.internal": ["169.254.169.254"]})
    broad = EgressPolicy(["169.254.0.0/16", "0.0.0.0/0", "trusted.internal"], resolver=dns)
    broad.check_address("169.254.10.10")
    with pytest.raises(EgressBlocked, match="cloud metadata"):
        broad.check_address("169.254.169.254")
    with pytest.raises(EgressBlocked, match="cloud metadata"):
        await broad.resolve("trusted.internal", 80)

    EgressPolicy(["169.254.169.254/32"]).check_address("169.254.169.254")


@pytest.mark.parametrize("entry", ["2130706433", "0x7f.1", "not a host", "10.0.0.0/33", "a/b"])
def test_malformed_allow_entries_fail_loudly(entry: str) -> None:
    with pytest.raises(ValueError, match="egress allow entry"):
        EgressPolicy([entry])


def test_from_settings() -> None:
    policy = EgressPolicy.from_settings(Settings(egress_allow="127.0.0.1/32, db.internal"))
    policy.check_address("127.0.0.1")
    policy.check_address("10.9.9.9", host="db.internal")
    with pytest.raises(EgressBlocked):
        policy.check_address("10.9.9.9", host="db.external")
    with pytest.raises(ConfigurationError, match="egress allow entry"):
        EgressPolicy.from_settings(Settings(egress_allow=["127.1"]))


def test_check_address_rejects_non_ip() -> None:
    with pytest.raises(EgressBlocked, match="not an IP address"):
        EgressPolicy(["0.0.0.0/0"]).check_address("db.example.com")


async def test_name_resolving_to_metadata_is_blocked() -> None:
    policy = EgressPolicy(resolver=fake_dns({"innocent.example.com": ["169.254.169.254"]}))
    with pytest.raises(EgressBlocked) as info:
        await policy.resolve("innocent.example.com", 80)
    assert info.value.host == "innocent.example.com"
    assert info.value.reason == "cloud metadata address"
    assert "innocent.example.com" in str(info.value)


async def test_real_localhost_is_blocked_without_allow() -> None:
    policy = EgressPolicy()  # the real resolver: /etc/hosts, no network
    with pytest.raises(EgressBlocked, match="loopback"):
        await policy.resolve("localhost", 5432)
    with pytest.raises(EgressBlocked, match="loopback"):
        await asyncio.to_thread(policy.resolve_sync, "localhost", 5432)


async def test_real_localhost_resolves_when_loopback_allowed() -> None:
    policy = EgressPolicy(["127.0.0.1", "::1"])
    target = await policy.resolve("localhost", 5432)
    assert target.address in ("127.0.0.1", "::1")
    assert set(target.addresses) <= {"127.0.0.1", "::1"}
    assert policy.resolve_sync("localhost", 5432).addresses == target.addresses


@pytest.mark.parametrize(
    "answers",
    [["8.8.8.8", "10.0.0.1"], ["10.0.0.1", "8.8.8.8"], ["2606:4700::1", "::ffff:127.0.0.1"]],
)
async def test_mixed_public_and_private_answers_are_blocked(answers: list[str]) -> None:
    policy = EgressPolicy(resolver=fake_dns({"mixed.example.com": answers}))
    with pytest.raises(EgressBlocked):
        await policy.resolve("mixed.example.com", 443)
    with pytest.raises(EgressBlocked):
        policy.resolve_sync("mixed.example.com", 443)


async def test_public_answers_resolve_and_deduplicate() -> None:
    policy = EgressPolicy(resolver=fake_dns({"api.example.com": ["8.8.8.8", "8.8.4.4", "8.8.8.8"]}))
    target = await policy.resolve("api.example.com", 443)
    assert target == ResolvedTarget(
        host="api.example.com", port=443, address="8.8.8.8", addresses=("8.8.8.8", "8.8.4.4")
    )


async def test_resolver_garbage_and_empty_answers() -> None:
    policy = EgressPolicy(resolver=fake_dns({"bad.example.com": ["not-an-ip"], "none.test": []}))
    with pytest.raises(EgressBlocked, match="not an IP address"):
        await policy.resolve("bad.example.com", 80)
    with pytest.raises(OSError, match="no addresses"):
        await policy.resolve("none.test", 80)
    with pytest.raises(socket.gaierror):
        await policy.resolve("missing.test", 80)


async def test_resolve_sync_uses_injected_resolver_in_and_out_of_a_loop() -> None:
    calls: list[str] = []
    policy = EgressPolicy(["10.0.0.0/8"], resolver=fake_dns({"db.test": ["10.1.1.1"]}, calls))
    # Called from the loop's own thread (a driver that blocks anyway) and from a worker thread.
    assert policy.resolve_sync("db.test", 5432).address == "10.1.1.1"
    assert (await asyncio.to_thread(policy.resolve_sync, "db.test", 5432)).address == "10.1.1.1"
    assert calls == ["db.test", "db.test"]


class LoopbackServer:
    """An echo server on 127.0.0.1 that records who connected."""

    def __init__(self) -> None:
        self.peers: list[str] = []
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("sockname")[0])
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()


@pytest.fixture
async def loopback_server() -> AsyncIterator[LoopbackServer]:
    recorder = LoopbackServer()
    recorder.server = await asyncio.start_server(recorder.handle, "127.0.0.1", 0)
    async with recorder.server:
        yield recorder


async def test_open_connection_dials_the_checked_address(loopback_server: LoopbackServer) -> None:
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])  # a rebinding name: 2nd answer differs
    calls: list[str] = []

    async def rebinding_dns(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    policy = EgressPolicy(["127.0.0.1/32"], resolver=rebinding_dns)
    reader, writer, target = await policy.open_connection(
        "warehouse.customer.test", loopback_server.port, timeout=5
    )
    try:
        writer.write(b"ping")
        await writer.drain()
        assert await reader.read(100) == b"ping"
    finally:
        writer.close()
        await writer.wait_closed()
    assert calls == ["warehouse.customer.test"]  # one lookup only
    assert target.address == "127.0.0.1"
    assert target.host == "warehouse.customer.test"
    assert writer.get_extra_info("peername")[0] == "127.0.0.1"
    assert loopback_server.peers == ["127.0.0.1"]


async def test_open_connection_blocked_never_connects(loopback_server: LoopbackServer) -> None:
    policy = EgressPolicy(resolver=fake_dns({"db.test": ["127.0.0.1"]}))
    with pytest.raises(EgressBlocked, match="loopback"):
        await policy.open_connection("db.test", loopback_server.port, timeout=5)
    await asyncio.sleep(0.05)
    assert loopback_server.peers == []


async def test_open_connection_falls_through_to_the_next_checked_answer(
    loopback_server: LoopbackServer,
) -> None:
    # 127.0.0.2 is loopback too but nothing listens there on this port.
    policy = EgressPolicy(
        ["127.0.0.0/8"], resolver=fake_dns({"db.test": ["127.0.0.2", "127.0.0.1"]})
    )
    _, writer, target = await policy.open_connection("db.test", loopback_server.port, timeout=5)
    writer.close()
    await writer.wait_closed()
    assert target.address == "127.0.0.1"
    assert target.addresses == ("127.0.0.2", "127.0.0.1")


async def test_open_connection_refused_raises_oserror() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    policy = EgressPolicy(["127.0.0.1"])
    with pytest.raises(OSError):
        await policy.open_connection("127.0.0.1", closed_port, timeout=5)


async def test_open_connection_timeout_covers_resolution() -> None:
    async def slow_dns(host: str, port: int) -> list[str]:
        await asyncio.sleep(30)
        return ["127.0.0.1"]

    policy = EgressPolicy(["127.0.0.1"], resolver=slow_dns)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await policy.open_connection("slow.test", 5432, timeout=0.1)
    assert time.monotonic() - started < 2
