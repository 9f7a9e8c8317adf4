"""FRR router configuration: the lab's `frr/` templates rendered from a small typed spec.

Why a spec between the stack config and the templates: the templates stay data (netlab-style),
every decision (which ASN, which listen range, multipath-relax or not) is made once here in
typed Python, and the golden-file tests can pin exactly what a stack config turns into. The
output must parse in FRR 8.4 (Debian, the netns replica) and FRR 10.7 (the lab's container), so
the templates keep to commands both accept.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import jinja2

from lab.config import LabConfig
from lab.plan import AddressPlan, router_name

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "frr"
PEER_GROUP = "NODES"
# Lab-fast timers: a dead node is noticed in seconds and a restarted session re-forms quickly.
KEEPALIVE_SECONDS = 3
HOLD_SECONDS = 9
CONNECT_RETRY_SECONDS = 5

# filename in the router's /etc/frr -> template in frr/
FILES = {"frr.conf": "frr.conf.j2", "daemons": "daemons", "vtysh.conf": "vtysh.conf"}


@dataclass(frozen=True)
class FrrRouterSpec:
    """Everything one FRR router's configuration depends on, decided before rendering."""

    hostname: str
    router_id: ipaddress.IPv4Address  # the router's underlay IP
    asn: int
    listen_range: ipaddress.IPv4Network  # the underlay: nodes dial in from anywhere in it
    node_asns: tuple[int, ...]
    maximum_paths: int
    # RFC 8212 behaviour (FRR's default): eBGP exchanges nothing without policies. Off in the lab;
    # tests switch it on to prove that the pod-cidrs check notices an empty RIB.
    ebgp_requires_policy: bool = False
    peer_group: str = PEER_GROUP
    keepalive: int = KEEPALIVE_SECONDS
    hold: int = HOLD_SECONDS
    connect_retry: int = CONNECT_RETRY_SECONDS

    def __post_init__(self) -> None:
        if self.router_id not in self.listen_range:
            raise ValueError(f"router-id {self.router_id} is outside the listen range {self.listen_range}")
        if not 1 <= self.maximum_paths <= 64:
            raise ValueError(f"maximum-paths {self.maximum_paths} is outside 1-64")
        if not self.node_asns:
            raise ValueError("a router needs at least one node to peer with")
        if self.asn in self.node_asns:
            raise ValueError(f"router ASN {self.asn} equals a node ASN: the sessions must be eBGP")
        if not 0 < self.keepalive * 3 <= self.hold:
            raise ValueError(f"hold {self.hold}s must be at least 3 x keepalive {self.keepalive}s")

    @property
    def multipath_relax(self) -> bool:
        """ECMP over paths from different neighbour ASNs needs `as-path multipath-relax`."""
        return len(set(self.node_asns)) > 1


def router_hostname(config: LabConfig, index: int) -> str:
    """The router's hostname, also the name of its container in the real lab."""
    return router_name(config.cluster_name, index)


def frr_spec(
    config: LabConfig, plan: AddressPlan, index: int, *, ebgp_requires_policy: bool = False
) -> FrrRouterSpec:
    """The spec of router `index` (0-based, in the plan's router order) of a bgp stack."""
    if config.bgp is None:
        raise ValueError(f"stack {config.stack!r} is mode {config.mode}, not bgp: it has no FRR router")
    if not 0 <= index < len(plan.router_ips):
        raise IndexError(f"router index {index} is outside 0-{len(plan.router_ips) - 1}")
    return FrrRouterSpec(
        hostname=router_hostname(config, index),
        router_id=plan.router_ips[index],
        asn=config.bgp.router_asn,
        listen_range=plan.underlay,
        node_asns=tuple(n.asn for n in plan.nodes if n.asn is not None),
        maximum_paths=config.bgp.maximum_paths,
        ebgp_requires_policy=ebgp_requires_policy,
    )


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 (FRR configuration, not HTML)
    )


def render_frr_files(spec: FrrRouterSpec) -> dict[str, str]:
    """filename -> content of everything the router's /etc/frr needs (frr.conf, daemons, vtysh.conf)."""
    env = _environment()
    return {name: env.get_template(template).render(spec=spec) for name, template in FILES.items()}
