"""StaticRouteSet: the routes of one node, as one resource (O(N) resources for N nodes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_command as command

from components.kind_cluster import KindCluster
from lab.routes import RouteTable
from lab.scripts import INTERPRETER, script


@dataclass(frozen=True)
class StaticRouteSetArgs:
    cluster: KindCluster
    node: str
    # Sorted `ip route` lines, one per line; known before apply wherever the next hops are.
    routes: pulumi.Input[str]
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)


class StaticRouteSet(pulumi.ComponentResource):
    """`ip route replace` of each line in the node's namespace; update removes lines no longer
    declared, delete removes exactly what was installed and tolerates routes (or nodes) already
    gone. The lines are the resource's input, so `pulumi preview --diff` shows them."""

    def __init__(
        self, name: str, args: StaticRouteSetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lab:index:StaticRouteSet", name, None, opts)
        self.routes = command.local.Command(
            f"{name}-routes",
            create=script("routes/apply"),
            update=script("routes/apply"),
            delete=script("routes/remove"),
            interpreter=INTERPRETER,
            environment={"LAB_NODE": args.node, "LAB_ROUTES": args.routes},
            add_previous_output_in_env=True,
            # A new cluster has new node containers, which start without these routes.
            triggers=[args.cluster.cluster.id],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[args.cluster.cluster, args.cluster.nodes_ready, *args.after],
                deleted_with=args.cluster.cluster,
            ),
        )
        self.register_outputs({"node": args.node, "routes": args.routes})


def route_sets(
    cluster: KindCluster, routes: pulumi.Input[RouteTable], after: Sequence[pulumi.Resource]
) -> list[StaticRouteSet]:
    """One StaticRouteSet per node of the cluster."""
    table = pulumi.Output.from_input(routes)

    def text_of(node: str) -> pulumi.Output[str]:
        return table.apply(lambda t: t.text(node))

    return [
        StaticRouteSet(
            f"routes-{node}",
            StaticRouteSetArgs(cluster=cluster, node=node, routes=text_of(node), after=after),
        )
        for node in cluster.node_names
    ]
