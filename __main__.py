"""cilium-datapath-lab: validate the stack's config, then compose the lab.

Nothing here decides anything: lab/ derives values and plans, components/ builds resources.
"""

import pulumi

from components.cilium_release import CiliumRelease, CiliumReleaseArgs
from components.kind_cluster import KindCluster, KindClusterArgs
from components.test_workloads import TestWorkloads, TestWorkloadsArgs
from components.verify import Verify, VerifyArgs, artifacts_dir
from lab import config as lab_config
from lab.plan import plan as address_plan

config = lab_config.load()  # raises LabConfigError, naming every bad key, before any resource
plan = address_plan(config)

cluster = KindCluster(config.cluster_name, KindClusterArgs(config=config, plan=plan))
cilium = CiliumRelease("cilium", CiliumReleaseArgs(config=config, plan=plan, cluster=cluster))

if config.verify.enabled:
    workloads = TestWorkloads("workloads", TestWorkloadsArgs(cluster=cluster, cilium=cilium))
    verify = Verify(
        "verify", VerifyArgs(config=config, plan=plan, cluster=cluster, cilium=cilium, workloads=workloads)
    )
    pulumi.export("checks", list(verify.checks))
    pulumi.export("report", f"{artifacts_dir(config)}/report.md")

pulumi.export("mode", config.mode.value)
pulumi.export("clusterName", config.cluster_name)
pulumi.export("network", plan.network_name)
pulumi.export("underlaySubnet", str(plan.underlay))
pulumi.export("nodes", cluster.node_names)
pulumi.export("nodeIps", cluster.node_ips)
pulumi.export("podCidrs", plan.pod_cidrs)
pulumi.export("ciliumVersion", config.cilium_version)
pulumi.export("kubeconfig", cluster.kubeconfig)  # secret: `pulumi stack output kubeconfig --show-secrets`
