"""cilium-datapath-lab: validate the stack's config, then compose the lab.

Nothing here decides anything: lab/ derives values and plans, components/ builds resources.
"""

import pulumi

from components.cilium_release import CiliumRelease, CiliumReleaseArgs
from components.kind_cluster import KindCluster, KindClusterArgs
from lab import config as lab_config
from lab.plan import plan as address_plan

config = lab_config.load()  # raises LabConfigError, naming every bad key, before any resource
plan = address_plan(config)

cluster = KindCluster(config.cluster_name, KindClusterArgs(config=config, plan=plan))
cilium = CiliumRelease("cilium", CiliumReleaseArgs(config=config, plan=plan, cluster=cluster))

pulumi.export("mode", config.mode.value)
pulumi.export("clusterName", config.cluster_name)
pulumi.export("network", plan.network_name)
pulumi.export("underlaySubnet", str(plan.underlay))
pulumi.export("nodes", cluster.node_names)
pulumi.export("nodeIps", cluster.node_ips)
pulumi.export("podCidrs", plan.pod_cidrs)
pulumi.export("ciliumVersion", config.cilium_version)
pulumi.export("kubeconfig", cluster.kubeconfig)  # secret: `pulumi stack output kubeconfig --show-secrets`
