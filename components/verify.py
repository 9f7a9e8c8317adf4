"""Verify: one pulumi-command resource per check of the catalogue, failing `up` with the evidence."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.cilium_release import CiliumRelease
from components.kind_cluster import KindCluster
from components.probe_pods import ProbePods
from lab.config import LabConfig
from lab.plan import LABEL_STACK, AddressPlan
from lab.scripts import INTERPRETER, script
from verify import catalogue, checks
from verify.kind import sidecar_name, topology_spec


@dataclass(frozen=True)
class VerifyArgs:
    config: LabConfig
    plan: AddressPlan
    cluster: KindCluster
    cilium: CiliumRelease
    workloads: ProbePods
    # FRR router containers (bgp): each gets a tools sidecar, as the nodes do.
    routers: Sequence[pulumi.CustomResource] = ()
    # Declared routes the static checks look for, as JSON [{node, dest, via}] (an Output where
    # next hops are node IPs). Text, not a list: Pulumi would otherwise walk it item by item.
    routes: pulumi.Input[str] = "[]"
    # What the BGP routers and Cilium's BGP resources are told (bgp), as JSON: the checks whose
    # claim rests on it (Check.bgp_dependent) run again when it changes (routers, ASNs, paths).
    bgp_intent: str = ""


def artifacts_dir(config: LabConfig) -> str:
    return f"artifacts/{config.stack}"


class Verify(pulumi.ComponentResource):
    """Each check is its own resource so `pulumi up` shows which claim failed, and it re-runs
    when what it checks changes (Cilium release, node addresses, and for the checks whose claim
    rests on them the declared routes) or when `verify.rerun` changes.

    Built in two steps because some claims are about the lab *before* its routes exist
    (static.fails-without-routes): the constructor creates those (`baseline`), the route sets
    depend on them, and `complete(after=route_sets)` creates the rest after the routes.
    """

    def __init__(self, name: str, args: VerifyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lab:index:Verify", name, None, opts)
        config, plan, cluster = args.config, args.plan, args.cluster
        on_cluster = pulumi.ResourceOptions(parent=self, deleted_with=cluster.cluster)

        image = docker.RemoteImage(
            f"{name}-tools-image",
            name=config.tools_image,
            keep_locally=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

        def sidecar(target: str, owner: pulumi.CustomResource) -> docker.Container:
            """A tools container in `target`'s network namespace. The label carrying the owner's id
            replaces it when the owner is replaced (a new container is a new namespace)."""
            return docker.Container(
                f"{name}-tools-{target}",
                name=sidecar_name(target),
                image=image.image_id,
                network_mode=f"container:{target}",
                command=["sleep", "infinity"],
                privileged=True,  # tcpdump and ip in the target's namespace
                must_run=True,
                labels=[
                    *(docker.ContainerLabelArgs(label=k, value=v) for k, v in plan.labels),
                    docker.ContainerLabelArgs(label=f"{LABEL_STACK}.joins", value=owner.id),
                ],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[owner],
                    replace_on_changes=["*"],
                    delete_before_replace=True,
                    # Docker reports network_mode back as container:<id>, not <name>: without this
                    # every `up` would see a change and rebuild the sidecar. The label above
                    # already replaces it when its owner is replaced.
                    ignore_changes=["networkMode"],
                ),
            )

        self.sidecars = [sidecar(node, cluster.cluster) for node in cluster.node_names]
        self.sidecars += [
            sidecar(router_name, router)
            for router_name, router in zip(plan.router_names, args.routers, strict=True)
        ]
        self._name, self._args, self._on_cluster = name, args, on_cluster
        self._topology = pulumi.Output.all(cluster.node_ips, args.routes).apply(
            lambda both: topology_spec(config, plan, both[0], json.loads(both[1]))
        )
        # What a lab looks like before its routes: the same, minus the routes.
        self._bare_topology = cluster.node_ips.apply(lambda ips: topology_spec(config, plan, ips, []))
        self.checks: dict[str, command.local.Command] = {}
        selected = catalogue.for_stack(config.mode.value)
        self.baseline = [self._check(c, ()) for c in selected if c.before_routes]
        self._remaining = [c for c in selected if not c.before_routes]

    def complete(self, after: Sequence[pulumi.Resource] = ()) -> None:
        """Create the checks that run once `after` (the lab's route sets, if any) exist."""
        for check in self._remaining:
            self._check(check, after)
        self.register_outputs({"checks": list(self.checks), "artifacts": artifacts_dir(self._args.config)})

    def _check(self, check: checks.Check, after: Sequence[pulumi.Resource]) -> command.local.Command:
        args = self._args
        config = args.config
        if check.before_routes:
            # A claim about the lab *before* its routes: it runs once per cluster. Re-running it
            # on a routed lab (new routes, a rerun nonce, a Cilium upgrade) could only fail.
            topology: pulumi.Output[str] = self._bare_topology
            triggers: list[Any] = [args.cluster.cluster.id]
        else:
            # Only a check whose claim rests on the routes sees them (and so runs again when a
            # route set changes); the rest see the lab without them, which is all they read.
            topology = self._topology if check.route_dependent else self._bare_topology
            triggers = [
                config.verify.rerun,
                args.cilium.release.version,
                args.cilium.release.values,
                topology,
                *([args.bgp_intent] if check.bgp_dependent else []),
            ]
        resource = command.local.Command(
            f"{self._name}-{check.id}",
            create=script("verify/check"),
            interpreter=INTERPRETER,
            environment={
                "LAB_STACK": config.stack,
                "LAB_CHECK": check.id,
                "LAB_CONTROL_PLANE": args.cluster.control_plane,
                "LAB_TOPOLOGY": topology,
                "LAB_ARTIFACTS": artifacts_dir(config),
            },
            triggers=triggers,
            opts=pulumi.ResourceOptions.merge(
                self._on_cluster,
                pulumi.ResourceOptions(
                    depends_on=[args.cilium.ready, *args.workloads.pods, *self.sidecars, *after]
                ),
            ),
        )
        self.checks[check.id] = resource
        return resource
