"""CiliumRelease: Cilium installed by Helm with the values of the stack's mode, and a readiness gate."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from components.kind_cluster import KindCluster
from lab import cilium
from lab.config import LabConfig
from lab.plan import AddressPlan
from lab.scripts import INTERPRETER, script

# Agents, operator and Envoy images pulled cold on a laptop can take many minutes.
INSTALL_TIMEOUT_SECONDS = 900
READY_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class CiliumReleaseArgs:
    config: LabConfig
    plan: AddressPlan
    cluster: KindCluster


class CiliumRelease(pulumi.ComponentResource):
    """The pinned Cilium chart from helm.cilium.io, through the cluster's own provider.

    `helm.v3.Release` (not `helm.v4.Chart`, which fails at preview without a cluster) waits for
    the agents itself; `ready` additionally waits for the CRDs the operator registers at
    runtime, so later Cilium custom resources can depend on it.
    """

    def __init__(
        self, name: str, args: CiliumReleaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lab:index:CiliumRelease", name, None, opts)
        config, plan, cluster = args.config, args.plan, args.cluster
        self.values = cilium.helm_values(config, plan)
        chart, repository = cilium.chart_source(config)

        self.release = k8s.helm.v3.Release(
            f"{name}-chart",
            name=cilium.RELEASE_NAME,
            chart=chart,
            version=config.cilium_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repository) if repository else None,
            namespace=cilium.NAMESPACE,
            values=self.values,
            timeout=INSTALL_TIMEOUT_SECONDS,
            max_history=5,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=cluster.provider,
                depends_on=[cluster.nodes_ready, *cluster.images_loaded],
                deleted_with=cluster.cluster,
            ),
        )

        self.crds = cilium.required_crds(config.mode)
        self.ready = command.local.Command(
            f"{name}-ready",
            create=script("cilium/ready"),
            interpreter=INTERPRETER,
            environment={
                "LAB_CONTROL_PLANE": cluster.control_plane,
                "LAB_CRDS": " ".join(self.crds),
                "LAB_TIMEOUT": str(READY_TIMEOUT_SECONDS),
            },
            # Re-check after every change of the release (a new version rolls the agents).
            triggers=[self.release.version, self.release.values],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release], deleted_with=cluster.cluster),
        )

        self.register_outputs(
            {"version": config.cilium_version, "values": self.values, "crds": list(self.crds)}
        )
