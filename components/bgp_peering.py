"""BgpPeering: Cilium's side of the BGP lab (cilium.io/v2) and the ECMP echo Service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from components.cilium_release import CiliumRelease
from components.kind_cluster import KindCluster
from lab.config import LabConfig
from lab.plan import AddressPlan
from lab.scripts import INTERPRETER, script

API = "cilium.io/v2"
ADVERTISE_LABEL = {"cilium-datapath-lab/advertise": "bgp"}
ECHO_LABEL = {"cilium-datapath-lab/ecmp": "echo"}
ECHO_PORT = 8080
ECHO_NAMESPACE = "default"  # not the checks' namespace: the echo VIP exists with or without verify


@dataclass(frozen=True)
class BgpPeeringArgs:
    config: LabConfig
    plan: AddressPlan
    cluster: KindCluster
    cilium: CiliumRelease
    routers: Sequence[str]  # router addresses (the FrrRouter containers' fixed IPs)


def cluster_configs(config: LabConfig, plan: AddressPlan, routers: Sequence[str]) -> list[dict[str, Any]]:
    """One CiliumBGPClusterConfig per node (selected by hostname), peering with every router.

    Per node, not per ASN: a change of ASNs or routers updates each node's own config in place,
    and no config is left without nodes (a removed one is deleted only at the end of `pulumi up`,
    after the checks have judged the lab with it still there).

    The BGP instance is named by its ASN and its number of routers, so a change of either gives
    the node a new instance, and Cilium starts it afresh. On this machine (Cilium 1.20.2), a
    router added to an instance that was already running reached Established with that node but
    received nothing from it (pfxRcd 0, still after 60 s; twice, tests/test_real_bgp.py), while
    every instance started afresh in the same change advertised at once."""
    assert config.bgp is not None
    specs = []
    for node in plan.nodes:
        assert node.asn is not None
        specs.append(
            {
                "name": f"lab-node-{node.name}",
                "spec": {
                    "nodeSelector": {
                        "matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node.name]}
                        ]
                    },
                    "bgpInstances": [
                        {
                            "name": f"asn-{node.asn}-routers-{len(routers)}",
                            "localASN": node.asn,
                            "peers": [
                                {
                                    "name": f"frr{i}",
                                    "peerAddress": address,
                                    "peerASN": config.bgp.router_asn,
                                    "peerConfigRef": {"name": "lab-frr"},
                                }
                                for i, address in enumerate(routers)
                            ],
                        }
                    ],
                },
            }
        )
    return specs


PEER_CONFIG: dict[str, Any] = {
    # Lab-fast timers (FRR's side uses the same 3/9 s), so sessions settle within seconds.
    "timers": {"connectRetryTimeSeconds": 5, "holdTimeSeconds": 9, "keepAliveTimeSeconds": 3},
    "gracefulRestart": {"enabled": True, "restartTimeSeconds": 15},
    "families": [{"afi": "ipv4", "safi": "unicast", "advertisements": {"matchLabels": ADVERTISE_LABEL}}],
}
ADVERTISEMENTS: dict[str, Any] = {
    "advertisements": [
        {"advertisementType": "PodCIDR"},
        {
            "advertisementType": "Service",
            "service": {"addresses": ["LoadBalancerIP"]},
            "selector": {"matchLabels": ECHO_LABEL},
        },
    ]
}


class BgpPeering(pulumi.ComponentResource):
    """Cilium advertises each node's pod CIDR and the echo VIP to the FRR router(s).

    Every resource waits for the CRDs the operator registers (CiliumRelease.ready). The echo
    Service uses externalTrafficPolicy: Cluster, so every node advertises the VIP: ECMP on FRR.
    """

    def __init__(self, name: str, args: BgpPeeringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lab:index:BgpPeering", name, None, opts)
        config, cluster = args.config, args.cluster
        assert config.bgp is not None
        # The first host of bgp.vipCidr, pinned (LB-IPAM annotation) so previews and checks know it.
        assert args.plan.vip is not None
        self.vip = str(args.plan.vip)
        in_cluster = pulumi.ResourceOptions(
            parent=self,
            provider=cluster.provider,
            deleted_with=cluster.cluster,
            depends_on=[args.cilium.ready],
        )

        def custom(
            kind: str, res_name: str, spec: dict[str, Any], labels: dict[str, str] | None = None
        ) -> Any:
            return k8s.apiextensions.CustomResource(
                f"{name}-{res_name}",
                api_version=API,
                kind=kind,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=res_name, labels=labels),
                spec=spec,
                opts=in_cluster,
            )

        # One ECMP path per node means the control plane advertises the VIP too (see the script).
        self.control_plane_included = command.local.Command(
            f"{name}-include-control-plane",
            create=script("bgp/include-control-plane"),
            interpreter=INTERPRETER,
            environment={"LAB_CONTROL_PLANE": cluster.control_plane},
            triggers=[cluster.cluster.id],
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[args.cilium.ready], deleted_with=cluster.cluster
            ),
        )
        vip_pool = {
            "blocks": [{"cidr": str(config.bgp.vip_cidr)}],
            "serviceSelector": {"matchLabels": ECHO_LABEL},
        }
        clusters = cluster_configs(config, args.plan, args.routers)
        # What Cilium's BGP control plane is told, known before apply (the checks' triggers).
        self.intent = {
            "peerConfig": PEER_CONFIG,
            "advertisements": ADVERTISEMENTS,
            "vipPool": vip_pool,
            "clusterConfigs": clusters,
        }
        self.resources = [
            custom("CiliumBGPPeerConfig", "lab-frr", PEER_CONFIG),
            custom("CiliumBGPAdvertisement", "lab-advertisements", ADVERTISEMENTS, ADVERTISE_LABEL),
            custom("CiliumLoadBalancerIPPool", "lab-vips", vip_pool),
            *(custom("CiliumBGPClusterConfig", c["name"], c["spec"]) for c in clusters),
        ]

        nodes = len(args.plan.nodes)
        self.echo = k8s.apps.v1.Deployment(
            f"{name}-echo",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="echo", namespace=ECHO_NAMESPACE, labels=ECHO_LABEL),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=nodes,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=ECHO_LABEL),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=ECHO_LABEL),
                    spec=k8s.core.v1.PodSpecArgs(
                        # One replica per node: every node can answer for the VIP locally too.
                        topology_spread_constraints=[
                            k8s.core.v1.TopologySpreadConstraintArgs(
                                max_skew=1,
                                topology_key="kubernetes.io/hostname",
                                when_unsatisfiable="DoNotSchedule",
                                label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=ECHO_LABEL),
                            )
                        ],
                        tolerations=[k8s.core.v1.TolerationArgs(operator="Exists")],
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="echo",
                                image=config.tools_image,
                                # Answers every TCP connection with the name of the node it runs on.
                                command=[
                                    "socat",
                                    f"TCP-LISTEN:{ECHO_PORT},fork,reuseaddr",
                                    "SYSTEM:echo $NODE_NAME",
                                ],
                                env=[
                                    k8s.core.v1.EnvVarArgs(
                                        name="NODE_NAME",
                                        value_from=k8s.core.v1.EnvVarSourceArgs(
                                            field_ref=k8s.core.v1.ObjectFieldSelectorArgs(
                                                field_path="spec.nodeName"
                                            )
                                        ),
                                    )
                                ],
                                ports=[k8s.core.v1.ContainerPortArgs(container_port=ECHO_PORT)],
                            )
                        ],
                    ),
                ),
            ),
            opts=in_cluster,
        )
        self.service = k8s.core.v1.Service(
            f"{name}-echo-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="echo",
                namespace=ECHO_NAMESPACE,
                labels=ECHO_LABEL,
                annotations={"lbipam.cilium.io/ips": self.vip},
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="LoadBalancer",
                external_traffic_policy="Cluster",
                selector=ECHO_LABEL,
                ports=[k8s.core.v1.ServicePortArgs(port=80, target_port=ECHO_PORT, protocol="TCP")],
            ),
            opts=pulumi.ResourceOptions.merge(
                in_cluster,
                pulumi.ResourceOptions(depends_on=[self.echo, *self.resources, self.control_plane_included]),
            ),
        )
        self.register_outputs({"vip": self.vip})
