"""Stack configuration: read once, validated completely, turned into typed objects.

Every problem is collected and reported together, each naming the full config key
(``cilium-datapath-lab:podCidr``) and what would be valid, before a single resource exists.
Values that later reach a shell command are validated here to a safe shape (DNS labels,
pinned images, ``X.Y.Z`` versions, parsed CIDRs), and are passed to commands as environment
variables, never spliced into command text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pulumi
from pulumi.runtime import config as runtime_config

from lab import offline
from lab.image_ref import ImageRef, ImageRefError, ImageSource, parse_image_ref
from lab.modes import MODE_FACTS, Mode, ModeFacts
from lab.offline import OfflineSupply

PROJECT = "cilium-datapath-lab"

MAX_WORKERS = 64
MAX_ROUTERS = 4
MAX_ECMP_PATHS = 64
# kind v0.32.0's default node image (pkg/apis/config/defaults/image.go).
DEFAULT_NODE_IMAGE = (
    "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"
)
DEFAULT_CILIUM_VERSION = "1.20.2"
# nicolaka/netshoot v0.16 (Alpine: iproute2 with -j, tcpdump, iputils ping), multi-arch index: the
# probe pods and the node sidecars (a machine with no registry runs its own, lab/offline.py).
DEFAULT_TOOLS_IMAGE = (
    "nicolaka/netshoot:v0.16@sha256:b09d9b21381f47a79b3cbcb30da25266dc17186ea00ae65e99fdc51396f48e70"
)
# The bgp lab's routers: FRR 10.7 (Alpine, tini + docker-start); a machine with no registry runs
# the image it builds from Debian's frr (lab/offline.py).
DEFAULT_FRR_IMAGE = "quay.io/frrouting/frr:10.7.0"
# cilium.io/v2 BGP resources and CiliumLoadBalancerIPPool v2 exist from 1.18 on.
MIN_CILIUM_VERSION = (1, 18, 0)
DEFAULT_SERVICE_CIDR = ipaddress.IPv4Network("10.96.0.0/16")  # kind's default serviceSubnet
# kubeadm refuses a serviceSubnet with more than 20 host bits (constants.MaximumBitsForServiceSubnet)
# or fewer than 10 addresses (MinimumAddressesInServiceSubnet: the DNS Service takes the tenth IP).
SERVICE_PREFIX_RANGE = (32 - 20, 28)
DEFAULT_ROUTER_ASN = 65000
DEFAULT_NODE_ASN = 65001
DEFAULT_BGP_ROUTERS = 1
DEFAULT_MAXIMUM_PATHS = 8
DEFAULT_VIP_CIDR = ipaddress.IPv4Network("10.99.0.0/28")
# `<cluster>-control-plane` is a node's hostname and must stay a 63-character DNS label.
MAX_CLUSTER_NAME = 63 - len("-control-plane")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_RERUN = re.compile(r"^[A-Za-z0-9._:-]{0,64}$")
_AS_TRANS = 23456


def key(name: str) -> str:
    """The full config key as a user types it in a stack file or `pulumi config set`."""
    return f"{PROJECT}:{name}"


@dataclass(frozen=True)
class ConfigIssue:
    key: str
    message: str

    def __str__(self) -> str:
        return f"{key(self.key)}: {self.message}"


class LabConfigError(ValueError):
    """All problems of a stack's config, reported together, each naming its key."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(
            f"invalid stack configuration ({len(issues)} problem{'s' if len(issues) != 1 else ''}):\n{lines}\n"
            f"Fix the stack file (stacks/Pulumi.<stack>.yaml) or run `pulumi config set <key> <value>`."
        )


@dataclass(frozen=True)
class StaticRoute:
    """An extra route a user asks for on one node (`staticRoutes`)."""

    node: str
    dest: ipaddress.IPv4Network
    via: ipaddress.IPv4Address


@dataclass(frozen=True)
class BgpConfig:
    router_asn: int
    node_asns: tuple[int, ...]  # one per node, in node order
    routers: int
    maximum_paths: int
    vip_cidr: ipaddress.IPv4Network


@dataclass(frozen=True)
class VerifyConfig:
    enabled: bool = True
    rerun: str = ""


@dataclass(frozen=True)
class LabConfig:
    stack: str
    mode: Mode
    cluster_name: str
    workers: int
    node_image: ImageRef
    cilium_version: str
    underlay: ipaddress.IPv4Network
    pod_cidr: ipaddress.IPv4Network
    pod_mask: int
    service_cidr: ipaddress.IPv4Network
    static_routes: tuple[StaticRoute, ...] = ()
    bgp: BgpConfig | None = None
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    offline: OfflineSupply | None = None  # this machine's own images and chart (lab/offline.py)

    @property
    def tools_image(self) -> str:
        """The image of the probe pods and the node sidecars (ip, tcpdump, ping)."""
        return self.offline.tools if self.offline is not None else DEFAULT_TOOLS_IMAGE

    @property
    def frr_image(self) -> str:
        """The image of the bgp lab's FRR routers."""
        return self.offline.frr if self.offline is not None else DEFAULT_FRR_IMAGE

    @property
    def facts(self) -> ModeFacts:
        return MODE_FACTS[self.mode]

    @property
    def node_count(self) -> int:
        return self.workers + 1

    @property
    def node_names(self) -> tuple[str, ...]:
        return kind_node_names(self.cluster_name, self.workers)


def kind_node_names(cluster: str, workers: int) -> tuple[str, ...]:
    """kind's container names, in the lab's node order: control plane, `-worker`, `-worker2`, ..."""
    return (
        f"{cluster}-control-plane",
        *(f"{cluster}-worker{'' if i == 1 else i}" for i in range(1, workers + 1)),
    )


KNOWN_KEYS = (
    "mode",
    "clusterName",
    "workers",
    "nodeImage",
    "ciliumVersion",
    "underlaySubnet",
    "podCidr",
    "podCidrMaskSize",
    "serviceCidr",
    "autoDirectNodeRoutes",
    "staticRoutes",
    "bgp",
    "verify",
)
_BGP_KEYS = ("routerAsn", "nodeAsn", "routers", "maximumPaths", "vipCidr")
_VERIFY_KEYS = ("enabled", "rerun")
_ROUTE_KEYS = ("node", "dest", "via")

T = TypeVar("T")


class _Collector:
    """Accumulates issues so one run reports every problem, not just the first."""

    def __init__(self) -> None:
        self.issues: list[ConfigIssue] = []

    def add(self, key_name: str, message: str) -> None:
        self.issues.append(ConfigIssue(key_name, message))

    def attempt(self, key_name: str, parse: Callable[[], T]) -> T | None:
        try:
            return parse()
        except _Invalid as exc:
            self.add(key_name, str(exc))
            return None


class _Invalid(ValueError):
    pass


def _as_int(raw: Any, what: str) -> int:
    if isinstance(raw, bool):
        raise _Invalid(f"expected {what}, got {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
        return int(raw.strip())
    raise _Invalid(f"expected {what}, got {raw!r}")


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise _Invalid(f"expected true or false, got {raw!r}")


def _as_structured(raw: Any, what: str) -> Any:
    """Pulumi hands structured config to programs as JSON text; tests may pass Python objects."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _Invalid(
                f"expected {what}, got text that is not structured YAML/JSON ({exc.msg})"
            ) from None
    return raw


def _as_network(raw: Any, example: str) -> ipaddress.IPv4Network:
    if not isinstance(raw, str):
        raise _Invalid(f"expected an IPv4 CIDR such as {example}, got {raw!r}")
    try:
        net = ipaddress.ip_network(raw.strip(), strict=True)
    except ValueError as exc:
        hint = ""
        with contextlib.suppress(ValueError):
            hint = f" (did you mean {ipaddress.ip_network(raw.strip(), strict=False)}?)"
        raise _Invalid(f"{raw!r} is not a valid IPv4 CIDR such as {example}{hint}: {exc}") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise _Invalid(f"{raw!r} is IPv6; this lab is IPv4-only, use a CIDR such as {example}")
    return net


def _as_asn(raw: Any) -> int:
    asn = _as_int(raw, "an AS number (1-4294967294)")
    if not 1 <= asn <= 4294967294 or asn == _AS_TRANS:
        raise _Invalid(
            f"{asn} is not a usable AS number: use 1-4294967294 except 23456 (AS_TRANS), e.g. 65001"
        )
    return asn


def _unknown_keys(c: _Collector, given: Mapping[str, Any], known: tuple[str, ...], prefix: str = "") -> None:
    for name in sorted(given):
        if name not in known:
            by_lower = {k.lower(): k for k in known}
            close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
            hint = f"did you mean {prefix}{by_lower[close[0]]}? " if close else ""
            c.add(f"{prefix}{name}", f"unknown key; {hint}known keys: {', '.join(prefix + k for k in known)}")


def _overlaps(
    c: _Collector, ranges: list[tuple[str, ipaddress.IPv4Network | None]], fix: Mapping[str, str]
) -> None:
    present = [(k, n) for k, n in ranges if n is not None]
    for i, (key_a, net_a) in enumerate(present):
        for key_b, net_b in present[i + 1 :]:
            if net_a.overlaps(net_b):
                c.add(
                    key_a,
                    f"{net_a} overlaps {key(key_b)} ({net_b}); {fix.get(key_a, 'pick a disjoint range')}",
                )


def underlay_capacity(underlay: ipaddress.IPv4Network) -> tuple[int, int]:
    """(nodes, routers) an underlay can hold.

    Docker hands out node addresses from the lower half (the network's `ip_range`; .1 is the
    gateway); FRR routers take fixed addresses from the top of the upper half, so the two never
    collide.
    """
    half = underlay.num_addresses // 2
    return max(half - 2, 0), max(half - 1, 0)


def parse_config(raw: Mapping[str, Any], stack: str) -> LabConfig:
    """Validate a stack's raw config (keys without the project prefix) into a LabConfig.

    Raises LabConfigError listing every problem found.
    """
    c = _Collector()
    _unknown_keys(c, raw, KNOWN_KEYS)

    mode = c.attempt("mode", lambda: _parse_mode(raw.get("mode")))
    facts = MODE_FACTS[mode] if mode else None

    cluster_name = c.attempt("clusterName", lambda: _parse_cluster_name(raw.get("clusterName", stack)))
    workers = c.attempt("workers", lambda: _parse_workers(raw.get("workers", 2)))
    node_image = c.attempt("nodeImage", lambda: _parse_image(raw.get("nodeImage", DEFAULT_NODE_IMAGE)))
    version = c.attempt(
        "ciliumVersion", lambda: _parse_version(raw.get("ciliumVersion", DEFAULT_CILIUM_VERSION))
    )

    underlay = c.attempt(
        "underlaySubnet",
        lambda: _parse_underlay(
            raw["underlaySubnet"] if "underlaySubnet" in raw else facts and str(facts.default_underlay)
        ),
    )
    pod_cidr = c.attempt(
        "podCidr",
        lambda: _parse_pod_cidr(
            raw["podCidr"] if "podCidr" in raw else facts and str(facts.default_pod_cidr)
        ),
    )
    pod_mask = c.attempt(
        "podCidrMaskSize",
        lambda: (
            _as_int(raw["podCidrMaskSize"], "a prefix length 16-28")
            if "podCidrMaskSize" in raw
            else (facts.default_pod_mask if facts else None)
        ),
    )
    service_cidr = c.attempt(
        "serviceCidr", lambda: _parse_service_cidr(raw.get("serviceCidr", str(DEFAULT_SERVICE_CIDR)))
    )

    if "autoDirectNodeRoutes" in raw and facts is not None:
        adnr = c.attempt("autoDirectNodeRoutes", lambda: _as_bool(raw["autoDirectNodeRoutes"]))
        if adnr is not None and adnr != facts.auto_direct_node_routes:
            c.add("autoDirectNodeRoutes", _adnr_message(mode, adnr))  # type: ignore[arg-type]

    node_count = workers + 1 if workers is not None else None

    # Pod address plan: one block of `pod_mask` per node out of the supernet.
    if pod_cidr is not None and pod_mask is not None:
        if not 16 <= pod_mask <= 28 or pod_mask < pod_cidr.prefixlen:
            c.add(
                "podCidrMaskSize",
                f"{pod_mask} must be between the supernet's /{pod_cidr.prefixlen} (or 16) and 28, e.g. 24 or 27",
            )
        elif node_count is not None and 2 ** (pod_mask - pod_cidr.prefixlen) < node_count:
            blocks = 2 ** (pod_mask - pod_cidr.prefixlen)
            c.add(
                "podCidr",
                f"{pod_cidr} holds only {blocks} /{pod_mask} block(s) but the lab has {node_count} nodes; "
                f"use a supernet of /{pod_mask - (node_count - 1).bit_length()} or larger, or raise "
                f"{key('podCidrMaskSize')}",
            )

    if underlay is not None and node_count is not None:
        node_room, _ = underlay_capacity(underlay)
        if node_room < node_count:
            c.add(
                "underlaySubnet",
                f"{underlay} leaves room for {node_room} kind nodes (Docker allocates from its lower half) "
                f"but the lab has {node_count}; use a /24",
            )

    bgp = _parse_bgp(c, raw, mode, node_count, underlay)
    verify = _parse_verify(c, raw)
    node_names: tuple[str, ...] | None = None
    if cluster_name is not None and workers is not None:
        node_names = kind_node_names(cluster_name, workers)
    static_routes = _parse_static_routes(c, raw, mode, node_names, underlay, pod_cidr, pod_mask)

    _overlaps(
        c,
        [
            ("podCidr", pod_cidr),
            ("underlaySubnet", underlay),
            ("serviceCidr", service_cidr),
            ("bgp.vipCidr", bgp.vip_cidr if bgp else None),
        ],
        {
            "podCidr": "the pod supernet must be disjoint from the node network, Services and VIPs",
            "underlaySubnet": "give the lab's Docker network its own range, e.g. 172.30.9.0/24",
            "serviceCidr": "keep kind's 10.96.0.0/16 or another disjoint range",
        },
    )

    if c.issues:
        raise LabConfigError(c.issues)
    assert mode and cluster_name and workers and node_image and version  # for the type checker
    assert underlay and pod_cidr and pod_mask and service_cidr
    return LabConfig(
        stack=stack,
        mode=mode,
        cluster_name=cluster_name,
        workers=workers,
        node_image=node_image,
        cilium_version=version,
        underlay=underlay,
        pod_cidr=pod_cidr,
        pod_mask=pod_mask,
        service_cidr=service_cidr,
        static_routes=static_routes,
        bgp=bgp,
        verify=verify,
    )


def _parse_mode(raw: Any) -> Mode:
    valid = ", ".join(m.value for m in Mode)
    if raw is None:
        raise _Invalid(f"required; set it to one of: {valid}")
    try:
        return Mode(str(raw).strip())
    except ValueError:
        close = difflib.get_close_matches(str(raw), [m.value for m in Mode], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise _Invalid(f"unknown mode {raw!r}{hint}; valid modes: {valid}") from None


def _parse_cluster_name(raw: Any) -> str:
    name = str(raw)
    if not _DNS_LABEL.fullmatch(name) or len(name) > MAX_CLUSTER_NAME:
        raise _Invalid(
            f"{name!r} is not a DNS-1123 label of at most {MAX_CLUSTER_NAME} characters "
            "(lowercase letters, digits and '-', starting and ending with a letter or digit), e.g. lab-bgp"
        )
    return name


def _parse_workers(raw: Any) -> int:
    workers = _as_int(raw, f"a whole number of worker nodes, 1-{MAX_WORKERS}")
    if not 1 <= workers <= MAX_WORKERS:
        raise _Invalid(
            f"{workers} workers is outside 1-{MAX_WORKERS}: cross-node checks need at least one worker "
            f"besides the control plane, and {MAX_WORKERS} is the largest lab this project supports"
        )
    return workers


def _parse_image(raw: Any) -> ImageRef:
    try:
        return parse_image_ref(str(raw), DEFAULT_NODE_IMAGE)
    except ImageRefError as exc:
        raise _Invalid(str(exc)) from None


def _parse_version(raw: Any) -> str:
    version = str(raw).strip()
    match = _SEMVER.fullmatch(version)
    if not match:
        raise _Invalid(f"{version!r} is not an exact chart version X.Y.Z, e.g. {DEFAULT_CILIUM_VERSION}")
    if tuple(int(g) for g in match.groups()) < MIN_CILIUM_VERSION:
        minimum = ".".join(map(str, MIN_CILIUM_VERSION))
        raise _Invalid(
            f"{version} is older than {minimum}, the first release with the cilium.io/v2 BGP and LB-IPAM APIs"
        )
    return version


def _parse_underlay(raw: Any) -> ipaddress.IPv4Network:
    net = _as_network(raw, "172.30.1.0/24")
    if not net.is_private:
        raise _Invalid(f"{net} is not a private range; use e.g. 172.30.1.0/24")
    if not 16 <= net.prefixlen <= 28:
        raise _Invalid(f"{net} must be between /16 and /28, e.g. 172.30.1.0/24")
    return net


def _parse_pod_cidr(raw: Any) -> ipaddress.IPv4Network:
    net = _as_network(raw, "10.10.0.0/16")
    if not net.is_private:
        raise _Invalid(f"{net} is not a private range; use e.g. 10.10.0.0/16")
    return net


def _parse_service_cidr(raw: Any) -> ipaddress.IPv4Network:
    net = _as_network(raw, "10.96.0.0/16")
    widest, narrowest = SERVICE_PREFIX_RANGE
    if not widest <= net.prefixlen <= narrowest:
        raise _Invalid(
            f"{net} must be between /{widest} and /{narrowest}: kubeadm (inside kind create) rejects a "
            f"Service range larger than /{widest} or with fewer than 10 addresses; e.g. 10.96.0.0/16"
        )
    return net


def _adnr_message(mode: Mode, value: bool) -> str:
    if mode in (Mode.OVERLAY, Mode.GENEVE) and value:
        return (
            f"true is invalid with mode {mode}: the Cilium agent refuses to start with autoDirectNodeRoutes in "
            "tunnel routing; remove the key, or use mode native-auto for direct node routes"
        )
    if mode is Mode.NATIVE_AUTO:
        return "native-auto is defined by autoDirectNodeRoutes: true; remove the key, or use mode static"
    source = "BGP and FRR" if mode is Mode.BGP else "the lab's static route sets"
    return (
        f"{str(value).lower()} conflicts with mode {mode}, whose routes come from "
        f"{source}; remove the key, "
        "or use mode native-auto for Cilium-installed node routes"
    )


def _sub(raw: Any, what: str) -> Mapping[str, Any]:
    value = _as_structured(raw, what)
    if not isinstance(value, Mapping):
        raise _Invalid(f"expected {what}, got {value!r}")
    return value


def _parse_bgp(
    c: _Collector,
    raw: Mapping[str, Any],
    mode: Mode | None,
    node_count: int | None,
    underlay: ipaddress.IPv4Network | None,
) -> BgpConfig | None:
    if mode is not Mode.BGP:
        if "bgp" in raw and mode is not None:
            c.add("bgp", f"only applies to mode bgp, not {mode}; remove the key")
        return None
    section = c.attempt("bgp", lambda: _sub(raw.get("bgp", {}), "a mapping with " + ", ".join(_BGP_KEYS)))
    if section is None:
        return None
    _unknown_keys(c, section, _BGP_KEYS, prefix="bgp.")
    router_asn = c.attempt("bgp.routerAsn", lambda: _as_asn(section.get("routerAsn", DEFAULT_ROUTER_ASN)))
    node_asns = c.attempt(
        "bgp.nodeAsn", lambda: _parse_node_asns(section.get("nodeAsn", DEFAULT_NODE_ASN), node_count)
    )
    routers = c.attempt(
        "bgp.routers",
        lambda: _as_int(section.get("routers", DEFAULT_BGP_ROUTERS), f"a router count 1-{MAX_ROUTERS}"),
    )
    if routers is not None and not 1 <= routers <= MAX_ROUTERS:
        c.add("bgp.routers", f"{routers} is outside 1-{MAX_ROUTERS}")
        routers = None
    if routers is not None and underlay is not None and underlay_capacity(underlay)[1] < routers:
        c.add("bgp.routers", f"{underlay} has no room for {routers} routers in its upper half; use a /24")
    max_paths = c.attempt(
        "bgp.maximumPaths",
        lambda: _as_int(
            section.get("maximumPaths", DEFAULT_MAXIMUM_PATHS), f"a path count 1-{MAX_ECMP_PATHS}"
        ),
    )
    if max_paths is not None and not 1 <= max_paths <= MAX_ECMP_PATHS:
        c.add("bgp.maximumPaths", f"{max_paths} is outside 1-{MAX_ECMP_PATHS} (FRR's maximum-paths range)")
        max_paths = None
    vip = c.attempt(
        "bgp.vipCidr", lambda: _as_network(section.get("vipCidr", str(DEFAULT_VIP_CIDR)), "10.99.0.0/28")
    )
    if router_asn is not None and node_asns is not None and router_asn in node_asns:
        c.add(
            "bgp.routerAsn",
            f"{router_asn} equals a node ASN; the lab peers over eBGP, so give the FRR router(s) an ASN of "
            f"their own (default {DEFAULT_ROUTER_ASN} with nodes at {DEFAULT_NODE_ASN})",
        )
        return None
    if None in (router_asn, node_asns, routers, max_paths, vip):
        return None
    assert router_asn and node_asns and routers and max_paths and vip
    return BgpConfig(router_asn, node_asns, routers, max_paths, vip)


def _parse_node_asns(raw: Any, node_count: int | None) -> tuple[int, ...]:
    raw = _as_structured(raw, "an AS number or a list of one per node") if isinstance(raw, str) else raw
    if isinstance(raw, list):
        asns = tuple(_as_asn(a) for a in raw)
        if node_count is not None and len(asns) != node_count:
            raise _Invalid(
                f"lists {len(asns)} ASNs but the lab has {node_count} nodes; give one per node, or one number"
            )
        return asns
    asn = _as_asn(raw)
    return tuple([asn] * (node_count or 1))


def _parse_verify(c: _Collector, raw: Mapping[str, Any]) -> VerifyConfig:
    section = c.attempt("verify", lambda: _sub(raw.get("verify", {}), "a mapping with enabled, rerun"))
    if section is None:
        return VerifyConfig()
    _unknown_keys(c, section, _VERIFY_KEYS, prefix="verify.")
    enabled = c.attempt("verify.enabled", lambda: _as_bool(section.get("enabled", True)))
    rerun = str(section.get("rerun", ""))
    if not _RERUN.fullmatch(rerun):
        c.add(
            "verify.rerun", f"{rerun!r} must be up to 64 letters, digits or . _ : - (e.g. a date: 2026-11-26)"
        )
    return VerifyConfig(enabled=True if enabled is None else enabled, rerun=rerun)


def _parse_static_routes(
    c: _Collector,
    raw: Mapping[str, Any],
    mode: Mode | None,
    node_names: tuple[str, ...] | None,
    underlay: ipaddress.IPv4Network | None,
    pod_cidr: ipaddress.IPv4Network | None,
    pod_mask: int | None,
) -> tuple[StaticRoute, ...]:
    if "staticRoutes" not in raw:
        return ()
    if mode is not None and mode is not Mode.STATIC:
        c.add("staticRoutes", f"only applies to mode static, not {mode}; remove the key")
        return ()
    entries = c.attempt(
        "staticRoutes", lambda: _as_structured(raw["staticRoutes"], "a list of {node, dest, via}")
    )
    if entries is None:
        return ()
    if not isinstance(entries, list):
        c.add("staticRoutes", f"expected a list of {{node, dest, via}}, got {entries!r}")
        return ()
    own_blocks: dict[str, ipaddress.IPv4Network] = {}
    if node_names and pod_cidr is not None and pod_mask is not None and pod_mask >= pod_cidr.prefixlen:
        blocks = pod_cidr.subnets(new_prefix=pod_mask)
        own_blocks = {name: block for name, block in zip(node_names, blocks, strict=False)}
    routes: list[StaticRoute] = []
    seen: set[tuple[str, ipaddress.IPv4Network]] = set()
    for i, entry in enumerate(entries):
        where = f"staticRoutes[{i}]"
        if not isinstance(entry, Mapping):
            c.add(where, f"expected {{node, dest, via}}, got {entry!r}")
            continue
        _unknown_keys(c, entry, _ROUTE_KEYS, prefix=f"{where}.")
        node = str(entry.get("node", ""))
        if node_names is not None and node not in node_names:
            c.add(f"{where}.node", f"{node!r} is not a node of this lab; nodes are {', '.join(node_names)}")
            continue
        dest = c.attempt(f"{where}.dest", lambda e=entry: _as_network(e.get("dest"), "192.168.50.0/24"))  # type: ignore[misc]
        via = c.attempt(f"{where}.via", lambda e=entry: _parse_ip(e.get("via")))  # type: ignore[misc]
        if dest is None or via is None:
            continue
        if underlay is not None and (
            via not in underlay or via in (underlay.network_address, underlay.broadcast_address)
        ):
            c.add(
                f"{where}.via",
                f"next hop {via} is not a host of the underlay {underlay}; a node can only route via a neighbour",
            )
            continue
        own = own_blocks.get(node)
        if own is not None and dest.overlaps(own):
            c.add(
                f"{where}.dest",
                f"{dest} overlaps {node}'s own pod CIDR {own}; routing it away would cut off local pods",
            )
            continue
        # Equal to, or inside, another node's block: as the more specific route it would take over
        # (part of) that node's pods, which the lab already routes on every node.
        taken = next((b for b in own_blocks.values() if dest.subnet_of(b)), None)
        if taken is not None:
            c.add(
                f"{where}.dest",
                f"{dest} is inside another node's pod CIDR {taken}, which the lab already routes on every node",
            )
            continue
        if (node, dest) in seen:
            c.add(f"{where}.dest", f"a route to {dest} on {node} is already declared")
            continue
        seen.add((node, dest))
        routes.append(StaticRoute(node=node, dest=dest, via=via))
    return tuple(routes)


def _parse_ip(raw: Any) -> ipaddress.IPv4Address:
    try:
        addr = ipaddress.ip_address(str(raw).strip())
    except ValueError:
        raise _Invalid(f"{raw!r} is not an IPv4 address such as 172.30.4.3") from None
    if not isinstance(addr, ipaddress.IPv4Address):
        raise _Invalid(f"{raw!r} is IPv6; this lab is IPv4-only")
    return addr


def raw_from_pulumi() -> dict[str, Any]:
    """Every `cilium-datapath-lab:*` key the engine passed in, unknown ones included (a typo must not be silent)."""
    merged: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{PROJECT}:"
    return {k[len(prefix) :]: v for k, v in merged.items() if k.startswith(prefix)}


def with_offline_supply(config: LabConfig, supply: OfflineSupply | None) -> LabConfig:
    """The config with this machine's own images and chart in place of the registries' (the switch).

    A registry `nodeImage` becomes the built node image; a `local:` or image-ID one is the user's
    own and stays. The built chart and images are of one Cilium release, so another
    `ciliumVersion` is an error naming the key rather than a chart that cannot be found.
    """
    if supply is None:
        return config
    if config.cilium_version != supply.cilium_version:
        raise LabConfigError(
            [
                ConfigIssue(
                    "ciliumVersion",
                    f"{config.cilium_version!r}: this machine reaches no registry and its own Cilium chart and "
                    f"images are of {supply.cilium_version} only ({supply.manifest}); set ciliumVersion to "
                    f"{supply.cilium_version}, or change the release in supply/images/cilium/recipe.toml and "
                    "run `make supply`",
                )
            ]
        )
    node_image = config.node_image
    if node_image.source is ImageSource.REGISTRY:
        node_image = ImageRef(ImageSource.LOCAL_TAG, supply.node_image)
    return dataclasses.replace(config, node_image=node_image, offline=supply)


def load() -> LabConfig:
    """Read and validate the current stack's config (raises LabConfigError before any resource exists)."""
    # OfflineSupplyError (a manifest missing or wrong) names the variable, the file and the fix.
    return with_offline_supply(parse_config(raw_from_pulumi(), pulumi.get_stack()), offline.load(os.environ))
