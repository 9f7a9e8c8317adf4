"""The bgp stack under mocks: Cilium BGP v2 resources, FRR router(s), routes via FRR, ECMP Service."""

from __future__ import annotations

from typing import Any

import pytest
from mockstack import Evaluation, changes, evaluate, stack_config, with_project_keys

from lab.config import DEFAULT_FRR_IMAGE

COMMAND = "command:local:Command"
CR = "kubernetes:cilium.io/v2:"
CONTAINER = "docker:index/container:Container"


@pytest.fixture(scope="module")
def bgp() -> Evaluation:
    return evaluate("bgp")


def crs(ev: Evaluation, kind: str) -> list[Any]:
    return ev.by_type(CR + kind)


def with_bgp(**bgp: Any) -> dict[str, Any]:
    base = stack_config("bgp")
    return with_project_keys(base, bgp={**base["cilium-datapath-lab:bgp"], **bgp})


def test_cilium_bgp_v2_resources(bgp: Evaluation) -> None:
    selected = []
    for cluster_config in crs(bgp, "CiliumBGPClusterConfig"):
        spec = cluster_config.inputs["spec"]
        (instance,) = spec["bgpInstances"]
        assert (instance["name"], instance["localASN"]) == ("asn-65001-routers-1", 65001)
        assert instance["peers"] == [
            {
                "name": "frr0",
                "peerAddress": "172.30.5.254",
                "peerASN": 65000,
                "peerConfigRef": {"name": "lab-frr"},
            }
        ]
        selected += spec["nodeSelector"]["matchExpressions"][0]["values"]
    assert sorted(selected) == ["lab-bgp-control-plane", "lab-bgp-worker", "lab-bgp-worker2"]
    (peer,) = crs(bgp, "CiliumBGPPeerConfig")
    family = peer.inputs["spec"]["families"][0]
    assert (family["afi"], family["safi"]) == ("ipv4", "unicast")
    (advert,) = crs(bgp, "CiliumBGPAdvertisement")
    assert advert.inputs["metadata"]["labels"] == family["advertisements"]["matchLabels"]
    types = {a["advertisementType"]: a for a in advert.inputs["spec"]["advertisements"]}
    assert set(types) == {"PodCIDR", "Service"}
    assert "selector" not in types["PodCIDR"]  # PodCIDR takes no selector
    assert types["Service"]["service"]["addresses"] == ["LoadBalancerIP"]
    (pool,) = crs(bgp, "CiliumLoadBalancerIPPool")
    assert pool.inputs["spec"]["blocks"] == [{"cidr": "10.99.0.0/28"}]
    for r in bgp.registrations:
        if r.type.startswith(CR):
            assert r.inputs["apiVersion"] == "cilium.io/v2"


def test_cilium_resources_wait_for_the_crd_gate_and_go_with_the_cluster(bgp: Evaluation) -> None:
    ready = bgp.one(COMMAND, "cilium-ready")
    cluster = bgp.one(COMMAND, "-cluster")
    gated = [r for r in bgp.registrations if r.type.startswith(CR) or r.name.startswith("bgp-echo")]
    assert sorted(r.name for r in gated) == [
        "bgp-echo",
        "bgp-echo-service",
        "bgp-lab-advertisements",
        "bgp-lab-frr",
        "bgp-lab-node-lab-bgp-control-plane",
        "bgp-lab-node-lab-bgp-worker",
        "bgp-lab-node-lab-bgp-worker2",
        "bgp-lab-vips",
    ]
    for r in gated:
        assert ready.urn in r.dependencies, r.name
        assert r.deleted_with == cluster.urn, r.name
    # The Service gets its VIP only from the pool, and is advertised only by the BGP resources.
    service = bgp.one("kubernetes:core/v1:Service", "bgp-echo-service")
    assert {r.urn for r in gated if r.type.startswith(CR)} <= set(service.dependencies)


def test_echo_service_spreads_over_every_node(bgp: Evaluation) -> None:
    service = bgp.one("kubernetes:core/v1:Service", "bgp-echo-service")
    assert service.inputs["spec"]["type"] == "LoadBalancer"
    assert service.inputs["spec"]["externalTrafficPolicy"] == "Cluster"
    assert service.inputs["metadata"]["annotations"] == {"lbipam.cilium.io/ips": "10.99.0.1"}
    deployment = bgp.one("kubernetes:apps/v1:Deployment", "bgp-echo")
    assert deployment.inputs["spec"]["replicas"] == 3
    assert bgp.outputs["vip"] == "10.99.0.1"


def test_frr_router_container(bgp: Evaluation) -> None:
    inputs = bgp.one(CONTAINER, "frr0-container").inputs
    assert inputs["name"] == "lab-bgp-frr0"
    assert inputs["networksAdvanced"][0]["ipv4Address"] == "172.30.5.254"
    assert inputs["sysctls"]["net.ipv4.fib_multipath_hash_policy"] == "1"
    assert inputs["sysctls"]["net.ipv4.ip_forward"] == "1"
    assert inputs["sysctls"]["net.ipv4.conf.all.send_redirects"] == "0"
    assert set(inputs["capabilities"]["adds"]) >= {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN"}
    uploads = {u["file"]: u["content"] for u in inputs["uploads"]}
    assert set(uploads) == {"/etc/frr/frr.conf", "/etc/frr/daemons", "/etc/frr/vtysh.conf"}
    assert "router bgp 65000" in uploads["/etc/frr/frr.conf"]
    assert "maximum-paths 8" in uploads["/etc/frr/frr.conf"]
    assert "bgpd=yes" in uploads["/etc/frr/daemons"]
    image = bgp.one("docker:index/remoteImage:RemoteImage", "frr0-image")
    assert image.inputs["name"] == DEFAULT_FRR_IMAGE == "quay.io/frrouting/frr:10.7.0"


def test_nodes_route_the_pod_supernet_via_frr(bgp: Evaluation) -> None:
    routes = [r for r in bgp.by_type(COMMAND) if r.name.startswith("routes-")]
    assert len(routes) == 3
    assert {r.inputs["environment"]["LAB_ROUTES"] for r in routes} == {"10.10.0.0/16 via 172.30.5.254"}


def test_two_routers_peer_with_every_node_and_share_the_route() -> None:
    """A second router gives every node a new BGP instance (its name counts the routers)."""
    ev = evaluate("bgp", with_bgp(routers=2))
    frrs = sorted(c.inputs["name"] for c in ev.by_type(CONTAINER) if c.name.startswith("frr"))
    assert frrs == ["lab-bgp-frr0", "lab-bgp-frr1"]
    configs = crs(ev, "CiliumBGPClusterConfig")
    assert len(configs) == 3
    for cluster_config in configs:
        [instance] = cluster_config.inputs["spec"]["bgpInstances"]
        assert instance["name"] == "asn-65001-routers-2"
        assert [p["peerAddress"] for p in instance["peers"]] == ["172.30.5.254", "172.30.5.253"]
    routes = {
        r.inputs["environment"]["LAB_ROUTES"] for r in ev.by_type(COMMAND) if r.name.startswith("routes-")
    }
    assert routes == {"10.10.0.0/16 nexthop via 172.30.5.254 nexthop via 172.30.5.253"}


def test_each_node_gets_its_own_cluster_config_with_its_asn_and_multipath_relax() -> None:
    ev = evaluate("bgp", with_bgp(nodeAsn=[65001, 65002, 65002]))
    configs = {c.inputs["metadata"]["name"]: c.inputs["spec"] for c in crs(ev, "CiliumBGPClusterConfig")}
    nodes = ("lab-bgp-control-plane", "lab-bgp-worker", "lab-bgp-worker2")
    assert set(configs) == {f"lab-node-{n}" for n in nodes}
    for node, asn in zip(nodes, (65001, 65002, 65002), strict=True):
        spec = configs[f"lab-node-{node}"]
        assert spec["nodeSelector"]["matchExpressions"][0]["values"] == [node]
        [instance] = spec["bgpInstances"]
        assert (instance["name"], instance["localASN"]) == (f"asn-{asn}-routers-1", asn)
    frr = next(c for c in ev.by_type(CONTAINER) if c.name == "frr0-container")
    conf = next(u["content"] for u in frr.inputs["uploads"] if u["file"] == "/etc/frr/frr.conf")
    assert "bgp bestpath as-path multipath-relax" in conf


def test_a_change_of_asns_and_routers_updates_each_nodes_config_in_place(bgp: Evaluation) -> None:
    """No config is created or deleted (a deletion would wait for the end of `pulumi up`, after the
    checks) and no node moves from one config to another."""
    diff = changes(bgp, evaluate("bgp", with_bgp(nodeAsn=[65001, 65002, 65003], routers=2)))
    configs = {name: op for (typ, name), op in diff.items() if typ.endswith("CiliumBGPClusterConfig")}
    assert configs == {"bgp-lab-node-lab-bgp-worker": "update", "bgp-lab-node-lab-bgp-worker2": "update",
                       "bgp-lab-node-lab-bgp-control-plane": "update"}  # fmt: skip


@pytest.mark.parametrize(
    "change", [{"routerAsn": 65100}, {"maximumPaths": 2}, {"nodeAsn": [65001, 65002, 65003]}]
)
def test_bgp_changes_touch_only_frr_bgp_resources_and_the_bgp_checks(
    bgp: Evaluation, change: dict[str, Any]
) -> None:
    """A change to what the routers or Cilium's BGP resources are told re-runs exactly the checks
    whose claim rests on it (the bgp.* ones) and leaves the datapath checks alone."""
    diff = changes(bgp, evaluate("bgp", with_bgp(**change)))
    assert diff
    for (typ, name), _op in diff.items():
        assert name.startswith(("frr", "bgp-", "verify-bgp.")), f"{typ} {name} changed"
    assert (CONTAINER, "frr0-container") in diff
    checks = {name: op for (typ, name), op in diff.items() if name.startswith("verify-")}
    assert checks == {
        f"verify-{c}": "replace"
        for c in ("bgp.sessions", "bgp.pod-cidrs", "bgp.ecmp", "bgp.ecmp-spread", "bgp.transit")
    }
