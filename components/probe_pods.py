"""ProbePods: the pods the checks send traffic between, pinned to nodes as in the write-up."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.cilium_release import CiliumRelease
from components.kind_cluster import KindCluster
from lab.config import LabConfig
from verify.kind import TEST_NAMESPACE


@dataclass(frozen=True)
class ProbePodsArgs:
    config: LabConfig
    cluster: KindCluster
    cilium: CiliumRelease


def placement(node_names: list[str]) -> dict[str, str]:
    """pod-a and pod-b share the first worker (intranode); pod-c sits on another node (internode)."""
    first_worker = node_names[1]
    other = node_names[2] if len(node_names) > 2 else node_names[0]
    return {"pod-a": first_worker, "pod-b": first_worker, "pod-c": other}


class ProbePods(pulumi.ComponentResource):
    """Three long-running netshoot pods with ping and tcpdump, pinned by nodeName."""

    def __init__(self, name: str, args: ProbePodsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Stacks created while this was `lab:index:TestWorkloads` keep their pods (no replacement).
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="lab:index:TestWorkloads")])
        )
        super().__init__("lab:index:ProbePods", name, None, opts)
        cluster = args.cluster
        in_cluster = pulumi.ResourceOptions(
            parent=self,
            provider=cluster.provider,
            deleted_with=cluster.cluster,
            depends_on=[args.cilium.ready],
        )
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=TEST_NAMESPACE, labels={"app.kubernetes.io/part-of": "cilium-datapath-lab"}
            ),
            opts=in_cluster,
        )
        self.placement = placement(cluster.node_names)
        self.pods = [
            k8s.core.v1.Pod(
                f"{name}-{pod}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=pod,
                    namespace=TEST_NAMESPACE,
                    labels={"app.kubernetes.io/name": "cdl-test", "cdl/pod": pod},
                ),
                spec=k8s.core.v1.PodSpecArgs(
                    node_name=node,  # pinned: placement is part of what the checks prove
                    tolerations=[k8s.core.v1.TolerationArgs(operator="Exists")],
                    termination_grace_period_seconds=0,
                    containers=[
                        k8s.core.v1.ContainerArgs(
                            name="tools",
                            image=args.config.tools_image,
                            command=["sleep", "infinity"],
                            security_context=k8s.core.v1.SecurityContextArgs(
                                capabilities=k8s.core.v1.CapabilitiesArgs(add=["NET_ADMIN", "NET_RAW"])
                            ),
                        )
                    ],
                ),
                opts=pulumi.ResourceOptions.merge(
                    in_cluster, pulumi.ResourceOptions(depends_on=[self.namespace])
                ),
            )
            for pod, node in self.placement.items()
        ]
        self.register_outputs({"placement": self.placement})
