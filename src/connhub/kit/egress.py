"""Outbound network policy: resolve once, check every address, connect to the checked one.

Why: tenants type in the hosts this service dials, so every host is an SSRF vector. A name can
point at the cloud metadata endpoint, at loopback admin ports or into the private network, and
a second lookup at connect time can answer differently from the one that was checked (DNS
rebinding). So the policy resolves exactly once, refuses the target if *any* answer is
blocked, and returns the checked IP for the caller to connect to.

Blocked unless ``allow`` covers the address or the host name:

- unspecified / "this network" (0.0.0.0/8, ::), loopback (127/8, ::1), link-local
  (169.254/16, fe80::/10), private (10/8, 172.16/12, 192.168/16, fc00::/7), CGNAT
  (100.64/10), multicast, reserved and anything else ``ipaddress`` says is not global;
- IPv6 forms that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
  ``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by the embedded address;
- cloud metadata (169.254.169.254, fd00:ec2::254) is only reachable through an allow entry
  naming that exact address: a broad CIDR or a trusted host name does not unlock it.

Hosts in the legacy numeric spellings that ``inet_aton`` accepts (``2130706433``,
``0x7f000001``, ``0177.0.0.1``, ``127.1``) are refused outright, allowed or not: URL parsers,
``ipaddress`` and the C resolver disagree about them, which is how address filters are evaded.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connhub.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

_METADATA = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# First match wins, so the specific reasons come before the broad ones.
_V4_BLOCKED: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "unspecified address"),
        ("127.0.0.0/8", "loopback address"),
        ("169.254.0.0/16", "link-local address"),
        ("10.0.0.0/8", "private address"),
        ("172.16.0.0/12", "private address"),
        ("192.168.0.0/16", "private address"),
        ("100.64.0.0/10", "shared (CGNAT) address"),
        ("224.0.0.0/4", "multicast address"),
        ("240.0.0.0/4", "reserved address"),
    )
)
_V6_BLOCKED: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), reason)
    for net, reason in (
        ("::/128", "unspecified address"),
        ("::1/128", "loopback address"),
        ("fe80::/10", "link-local address"),
        ("fec0::/10", "site-local address"),
        ("fc00::/7", "private (unique local) address"),
        ("ff00::/8", "multicast address"),
    )
)
# A label that inet_aton would read as a number: decimal, octal (leading 0) or 0x-hex.
_NUMERIC_LABEL = re.compile(r"(?:0[xX][0-9a-fA-F]*|[0-9]+)")
_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_MAX_REPORTED_HOST = 120


class EgressBlocked(Exception):
    """The policy refused a target; the message names the host and the reason, never secrets."""

    def __init__(self, host: str, reason: str) -> None:
        self.host = _printable_host(host)
        self.reason = reason
        super().__init__(f"egress policy blocked {self.host!r}: {reason}")


@dataclass(frozen=True)
class ResolvedTarget:
    """Where to connect: ``address`` is a checked IP; ``host`` stays for TLS SNI and messages."""

    host: str
    port: int
    address: str
    addresses: tuple[str, ...]


def _printable_host(host: str) -> str:
    """Drop any userinfo (it may carry a password) and bound the length before reporting."""
    visible = host.rsplit("@", 1)[-1]
    if len(visible) > _MAX_REPORTED_HOST:
        visible = visible[:_MAX_REPORTED_HOST] + "..."
    return visible


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _normalise_hostname(host: str) -> str | None:
    """Lower-case ASCII (IDNA) form without the trailing dot, or None if not a DNS name."""
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    name = ascii_host.lower().removesuffix(".")
    if not name or len(name) > 253:
        return None
    labels = name.split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return None
    return name


def _is_numeric_spelling(host: str) -> bool:
    """True for anything a resolver may read as an IPv4 number (last label numeric)."""
    last = host.rstrip(".").rsplit(".", 1)[-1]
    return bool(_NUMERIC_LABEL.fullmatch(last))


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is blocked by default, or None for a public address."""
    if ip in _METADATA:
        return "cloud metadata address"
    if isinstance(ip, ipaddress.IPv4Address):
        for net4, reason in _V4_BLOCKED:
            if ip in net4:
                return reason
        return None if ip.is_global else "non-public address"
    embedded = _embedded_v4(ip)
    if embedded is not None:
        inner, form = embedded
        inner_reason = blocked_reason(inner)
        return f"{form} {inner}: {inner_reason}" if inner_reason else None
    for net6, reason in _V6_BLOCKED:
        if ip in net6:
            return reason
    if ip.is_reserved:
        return "reserved address"
    return None if ip.is_global else "non-public address"


class EgressPolicy:
    """The outbound policy every connection this service makes goes through."""

    def __init__(self, allow: Sequence[str] = (), *, resolver: Resolver | None = None) -> None:
        networks: list[IPNetwork] = []
        hostnames: set[str] = set()
        for raw in allow:
            entry = raw.strip()
            if not entry:
                continue
            network = _parse_allow_network(entry)
            if network is not None:
                networks.append(network)
                continue
            name = None if _is_numeric_spelling(entry) else _normalise_hostname(entry)
            if name is None:
                raise ValueError(f"egress allow entry is not a CIDR, IP or host name: {entry!r}")
            hostnames.add(name)
        self._networks = tuple(networks)
        self._hostnames = frozenset(hostnames)
        self._resolver = resolver

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        """Policy from ``CONNHUB_EGRESS_ALLOW``; a malformed entry is a start-up refusal."""
        from connhub.errors import ConfigurationError

        try:
            return cls(settings.egress_allow)
        except ValueError as exc:
            raise ConfigurationError(str(exc), field="egress_allow") from exc

    def check_address(self, ip: str, *, host: str | None = None) -> None:
        """Raise EgressBlocked unless ``ip`` may be dialled (for ``host``, if it was resolved)."""
        label = host if host is not None else ip
        addr = _parse_ip(ip.strip("[]"))
        if addr is None:
            raise EgressBlocked(label, "not an IP address")
        if addr in _METADATA:
            if not self._allows_exactly(addr):
                raise EgressBlocked(label, "cloud metadata address")
            return
        if host is not None and self._host_allowed(host):
            return
        if self._address_allowed(addr):
            return
        reason = blocked_reason(addr)
        if reason is not None:
            raise EgressBlocked(label, reason)

    async def resolve(self, host: str, port: int) -> ResolvedTarget:
        """One lookup (loop.getaddrinfo or the injected resolver); every answer is checked."""
        name, literal = self._validate(host, port)
        if literal is not None:
            return self._literal_target(host, port, literal)
        if self._resolver is not None:
            answers = await self._resolver(name, port)
        else:
            infos = await asyncio.get_running_loop().getaddrinfo(
                name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
            answers = [str(info[4][0]) for info in infos]
        return self._target_from(host, port, answers)

    def resolve_sync(self, host: str, port: int) -> ResolvedTarget:
        """``resolve`` for worker threads running blocking drivers."""
        name, literal = self._validate(host, port)
        if literal is not None:
            return self._literal_target(host, port, literal)
        if self._resolver is not None:
            answers = _run_coroutine_sync(self._resolver, name, port)
        else:
            infos = socket.getaddrinfo(
                name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
            answers = [str(info[4][0]) for info in infos]
        return self._target_from(host, port, answers)

    async def open_connection(
        self,
        host: str,
        port: int,
        *,
        timeout: float,  # noqa: ASYNC109 - the contract
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, ResolvedTarget]:
        """TCP to a checked address; ``timeout`` bounds resolution and connect together.

        Answers are tried in order, so a name with both ::1 and 127.0.0.1 still connects when
        only one listens; the returned target's ``address`` is the one actually connected.
        """
        async with asyncio.timeout(timeout):
            target = await self.resolve(host, port)
            last_error: OSError | None = None
            for address in target.addresses:
                try:
                    reader, writer = await asyncio.open_connection(address, port)
                except OSError as exc:
                    last_error = exc
                    continue
                return reader, writer, replace(target, address=address)
        assert last_error is not None  # resolve() never returns an empty target
        raise last_error

    def _validate(self, host: str, port: int) -> tuple[str, IPAddress | None]:
        """Normalised host name, or the IP literal it spells; refuses malformed hosts."""
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise EgressBlocked(host, "invalid port")
        if not host or any(ch.isspace() or ch in "@/\\?#" for ch in host):
            raise EgressBlocked(host, "invalid host")
        bare = host
        if host.startswith("[") or host.endswith("]"):
            if not (host.startswith("[") and host.endswith("]")):
                raise EgressBlocked(host, "invalid host")
            bare = host[1:-1]
            literal = _parse_ip(bare)
            if not isinstance(literal, ipaddress.IPv6Address):
                raise EgressBlocked(host, "invalid host")
            return bare, literal
        literal = _parse_ip(bare)
        if literal is not None:
            return bare, literal
        if _is_numeric_spelling(bare):
            raise EgressBlocked(host, "non-canonical numeric host")
        name = _normalise_hostname(bare)
        if name is None:
            raise EgressBlocked(host, "invalid host")
        return name, None

    def _literal_target(self, host: str, port: int, ip: IPAddress) -> ResolvedTarget:
        self.check_address(str(ip), host=host)
        return ResolvedTarget(host=host, port=port, address=str(ip), addresses=(str(ip),))

    def _target_from(self, host: str, port: int, answers: Sequence[str]) -> ResolvedTarget:
        addresses = tuple(dict.fromkeys(answers))
        if not addresses:
            raise OSError(f"no addresses found for {_printable_host(host)!r}")
        for address in addresses:
            self.check_address(address, host=host)
        return ResolvedTarget(host=host, port=port, address=addresses[0], addresses=addresses)

    def _host_allowed(self, host: str) -> bool:
        if not self._hostnames or _is_numeric_spelling(host):
            return False
        name = _normalise_hostname(host.strip("[]"))
        return name is not None and name in self._hostnames

    def _address_allowed(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)  # same socket destination as the bare IPv4
        return any(c in net for c in candidates for net in self._networks)

    def _allows_exactly(self, ip: IPAddress) -> bool:
        return any(net.num_addresses == 1 and ip in net for net in self._networks)


def _parse_allow_network(entry: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None


def _run_coroutine_sync(resolver: Resolver, host: str, port: int) -> list[str]:
    """Run an injected async resolver from sync code, off any loop this thread is running."""

    async def call() -> list[str]:
        return await resolver(host, port)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(call())
    result: list[list[str]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            result.append(asyncio.run(call()))
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    thread = threading.Thread(target=worker, name="egress-resolve")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]
