"""cilium-datapath-lab: validate the stack's config, then compose the lab.

Nothing here decides anything: lab/ derives values, plans and routes, components/ builds resources.
"""

import json

import pulumi

from components.bgp_peering import BgpPeering, BgpPeeringArgs
from components.cilium_release import CiliumRelease, CiliumReleaseArgs
from components.frr_router import FrrRouter, FrrRouterArgs
from components.kind_cluster import KindCluster, KindClusterArgs
from components.probe_pods import ProbePods, ProbePodsArgs
from components.static_route_set import route_sets
from components.verify import Verify, VerifyArgs, artifacts_dir
from lab import config as lab_config
from lab import routes as lab_routes
from lab.modes import Mode
from lab.plan import plan as address_plan

config = lab_config.load()  # raises LabConfigError, naming every bad key, before any resource
plan = address_plan(config)

cluster = KindCluster(config.cluster_name, KindClusterArgs(config=config, plan=plan))
cilium = CiliumRelease("cilium", CiliumReleaseArgs(config=config, plan=plan, cluster=cluster))

# Routes the lab installs itself (static: node to node; bgp: the pod supernet via FRR).
node_routes: pulumi.Output[lab_routes.RouteTable] | None = None
if config.mode is Mode.STATIC:
    node_routes = cluster.node_ips.apply(lambda ips: lab_routes.static_routes(config, plan, ips))

routers: list[FrrRouter] = []
bgp: BgpPeering | None = None
bgp_intent = ""  # what the routers and Cilium's BGP resources are told, for the checks' triggers
if config.bgp is not None:
    routers = [
        FrrRouter(f"frr{i}", FrrRouterArgs(config=config, plan=plan, cluster=cluster, index=i))
        for i in range(config.bgp.routers)
    ]
    bgp = BgpPeering(
        "bgp",
        BgpPeeringArgs(
            config=config, plan=plan, cluster=cluster, cilium=cilium, routers=[r.address for r in routers]
        ),
    )
    # Cilium's BGP control plane advertises but never installs routes: nodes reach the pod
    # supernet through FRR by a route the lab sets (known before apply).
    node_routes = pulumi.Output.from_input(lab_routes.bgp_routes(config, plan))
    bgp_intent = json.dumps({"routers": [r.files for r in routers], "cilium": bgp.intent}, sort_keys=True)
    pulumi.export("routers", {r.hostname: r.address for r in routers})
    pulumi.export("vip", bgp.vip)

verify = None
if config.verify.enabled:
    workloads = ProbePods("workloads", ProbePodsArgs(config=config, cluster=cluster, cilium=cilium))
    declared: pulumi.Input[str] = (
        node_routes.apply(lambda table: json.dumps(table.declared())) if node_routes is not None else "[]"
    )
    verify = Verify(
        "verify",
        VerifyArgs(
            config=config,
            plan=plan,
            cluster=cluster,
            cilium=cilium,
            workloads=workloads,
            routes=declared,
            routers=[r.container for r in routers],
            bgp_intent=bgp_intent,
        ),
    )

route_set_resources = []
if node_routes is not None:
    # The write-up's order: prove the failure first (verify.baseline), then add the routes.
    after = [cilium.ready, *(verify.baseline if verify else [])]
    route_set_resources = route_sets(cluster, node_routes, after=after)
    pulumi.export("routes", node_routes.apply(lambda t: t.as_text()))

if verify is not None:
    bgp_resources = [*bgp.resources, bgp.service, *(r.ready for r in routers)] if bgp is not None else []
    verify.complete(after=[*route_set_resources, *bgp_resources])
    pulumi.export("checks", list(verify.checks))
    pulumi.export("report", f"{artifacts_dir(config)}/report.md")

pulumi.export("mode", config.mode.value)
pulumi.export("modeSummary", config.facts.summary)  # what this lab shows, in one line
pulumi.export("clusterName", config.cluster_name)
pulumi.export("network", plan.network_name)
pulumi.export("underlaySubnet", str(plan.underlay))
pulumi.export("nodes", cluster.node_names)
pulumi.export("nodeIps", cluster.node_ips)
pulumi.export("podCidrs", plan.pod_cidrs)
pulumi.export("ciliumVersion", config.cilium_version)
pulumi.export("kubeconfig", cluster.kubeconfig)  # secret: `pulumi stack output kubeconfig --show-secrets`
