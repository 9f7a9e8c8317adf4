"""Turn tool output into facts. JSON output (`ip -j`, `bpftool -j`, kubectl) wherever the tool has it;
ping's summary lines are the one text format read here, since ping has no JSON mode."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any


class ParseError(ValueError):
    """Output was not what the tool prints; the check reports it instead of guessing."""


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        snippet = text.strip()[:200] or "(empty)"
        raise ParseError(f"{what}: not JSON ({exc.msg}): {snippet}") from None


# --- ip -j route ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    dst: str  # "default", "10.10.0.32/27" or a host address "10.10.0.13"
    dev: str | None
    gateway: str | None
    protocol: str | None
    scope: str | None
    nexthops: tuple[tuple[str | None, str | None], ...] = ()  # (gateway, dev) of a multipath route

    @property
    def network(self) -> ipaddress.IPv4Network | None:
        if self.dst == "default":
            return ipaddress.IPv4Network("0.0.0.0/0")
        try:
            return ipaddress.IPv4Network(self.dst)
        except ValueError:
            return None

    def line(self) -> str:
        """The route as `ip route` prints it, for evidence a person can read."""
        parts = [self.dst]
        if self.gateway:
            parts += ["via", self.gateway]
        if self.dev:
            parts += ["dev", self.dev]
        if self.protocol:
            parts += ["proto", self.protocol]
        if self.scope:
            parts += ["scope", self.scope]
        parts += [f"nexthop via {gw} dev {dev}" for gw, dev in self.nexthops]
        return " ".join(parts)


def parse_routes(text: str) -> list[Route]:
    """`ip -j route show` (any table)."""
    data = _json(text, "ip -j route")
    if not isinstance(data, list):
        raise ParseError("ip -j route: expected a list")
    routes = []
    for r in data:
        nexthops = tuple((n.get("gateway"), n.get("dev")) for n in r.get("nexthops", []))
        routes.append(
            Route(
                dst=str(r.get("dst")),
                dev=r.get("dev"),
                gateway=r.get("gateway"),
                protocol=r.get("protocol"),
                scope=r.get("scope"),
                nexthops=nexthops,
            )
        )
    return routes


def route_to(routes: list[Route], network: ipaddress.IPv4Network) -> Route | None:
    """The route whose destination is exactly `network`."""
    return next((r for r in routes if r.network == network), None)


# --- ip -j addr / ip -j -d link ------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    ifname: str
    interface: ipaddress.IPv4Interface


def parse_addresses(text: str) -> list[Address]:
    """`ip -j addr show [dev X]`: every IPv4 address with its prefix length."""
    data = _json(text, "ip -j addr")
    out = []
    for link in data:
        for a in link.get("addr_info", []):
            if a.get("family") == "inet":
                out.append(Address(link["ifname"], ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}")))
    return out


@dataclass(frozen=True)
class Link:
    ifname: str
    kind: str | None  # linkinfo.info_kind: "vxlan", "geneve", "veth", "bridge", ...
    mtu: int
    data: dict[str, Any]  # linkinfo.info_data (e.g. vxlan "port", "id", "external")


def parse_links(text: str) -> list[Link]:
    """`ip -j -d link show`."""
    data = _json(text, "ip -j -d link")
    out = []
    for link in data:
        info = link.get("linkinfo", {})
        out.append(
            Link(
                link["ifname"],
                info.get("info_kind"),
                int(link.get("mtu", 0)),
                dict(info.get("info_data", {})),
            )
        )
    return out


# --- bpftool -j net show ----------------------------------------------------------------------


@dataclass(frozen=True)
class BpfAttachment:
    device: str
    direction: str  # "ingress" or "egress"
    attach: str  # "tcx" (Cilium on current kernels) or "clsact"/"tc" (tc filter)
    program: str  # the program's name, whichever way bpftool printed it


_SECTION = re.compile(r"^(?:.*:)?\[(?P<section>[^\]]+)\]$")


def program_name(raw: str, device: str = "") -> str:
    """The program behind a bpftool entry, in each form bpftool prints it.

    tcx: the program's name (`cil_from_container`); a tc filter loaded from an object file:
    `<object>:[<section>]`; a tc filter Cilium names itself: `<program>-<device>`.
    """
    match = _SECTION.match(raw)
    if match:
        return match["section"]
    if device and raw.endswith(f"-{device}"):
        return raw[: -len(device) - 1]
    return raw


def parse_bpf_net(text: str) -> list[BpfAttachment]:
    """`bpftool -j net show`: tc and tcx attachments (both forms, see program_name)."""
    data = _json(text, "bpftool -j net show")
    sections = data if isinstance(data, list) else [data]
    out = []
    for section in sections:
        for entry in section.get("tc", []):
            kind = str(entry.get("kind", ""))  # "tcx/ingress", "clsact/egress", ...
            attach, _, direction = kind.partition("/")
            out.append(
                BpfAttachment(
                    device=str(entry.get("devname", "")),
                    direction=direction or kind,
                    attach=attach,
                    program=program_name(str(entry.get("name", "")), str(entry.get("devname", ""))),
                )
            )
    return out


# --- ping -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PingSummary:
    transmitted: int
    received: int
    loss_percent: float
    ttls: tuple[int, ...]
    errors: tuple[str, ...]  # e.g. "Destination Net Unreachable", "Frag needed"

    @property
    def all_answered(self) -> bool:
        return self.transmitted > 0 and self.received == self.transmitted


_PING_STATS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received.*?([\d.]+)% packet loss")
_PING_TTL = re.compile(r"\bttl=(\d+)")
_PING_ERRORS = re.compile(
    r"(Destination \w+ Unreachable|Frag needed[^\n]*|message too long|Network is unreachable)"
)


def parse_ping(text: str) -> PingSummary:
    """iputils/busybox ping output (the summary line is the same shape in both)."""
    match = _PING_STATS.search(text)
    if not match:
        raise ParseError(f"ping: no statistics line in output: {text.strip()[:200] or '(empty)'}")
    return PingSummary(
        transmitted=int(match[1]),
        received=int(match[2]),
        loss_percent=float(match[3]),
        ttls=tuple(int(t) for t in _PING_TTL.findall(text)),
        errors=tuple(dict.fromkeys(_PING_ERRORS.findall(text))),
    )


# --- CiliumNode -------------------------------------------------------------------------------


def parse_ciliumnode_pools(obj: dict[str, Any]) -> dict[str, list[ipaddress.IPv4Network]]:
    """`spec.ipam.pools.allocated` of one CiliumNode: pool name -> allocated CIDRs."""
    pools: dict[str, list[ipaddress.IPv4Network]] = {}
    allocated = obj.get("spec", {}).get("ipam", {}).get("pools", {}).get("allocated", []) or []
    for entry in allocated:
        nets = [ipaddress.IPv4Network(c) for c in entry.get("cidrs", []) if ":" not in c]
        pools.setdefault(str(entry.get("pool", "")), []).extend(nets)
    return pools


def parse_kube_list(text: str) -> list[dict[str, Any]]:
    """`kubectl get X -o json` (a List) -> its items."""
    data = _json(text, "kubectl get -o json")
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ParseError("kubectl get -o json: no items list")
    return items
