"""KindCluster: the lab's Docker network and a kind cluster on it, with its addresses pinned."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from lab import kind_config
from lab.config import LabConfig
from lab.inventory import parse_node_ips
from lab.plan import UNDERLAY_MTU, AddressPlan
from lab.scripts import INTERPRETER, script


@dataclass(frozen=True)
class KindClusterArgs:
    config: LabConfig
    plan: AddressPlan


def kubeconfig_path(config: LabConfig) -> str:
    """Where kind writes the lab's kubeconfig: relative to the project, never the user's ~/.kube/config."""
    return f"artifacts/{config.stack}/kubeconfig"


class KindCluster(pulumi.ComponentResource):
    """A kind cluster (no default CNI, no kube-proxy) on the lab's own IPv4 Docker network.

    kind would put it on its shared `kind` network, whose IPv4 subnet Docker picks from its
    default pools (kind chooses only that network's IPv6 subnet). The lab's addresses must be
    known before `pulumi up`, so it creates a network on the stack's `underlaySubnet` (nodes
    from its lower half) and points kind at it with KIND_EXPERIMENTAL_DOCKER_NETWORK. Changing
    mode or node topology replaces the cluster (Cilium cannot switch routing mode in place);
    nothing else touches it.
    """

    kubeconfig: pulumi.Output[str]
    node_ips: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: KindClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lab:index:KindCluster", name, None, opts)
        config, plan = args.config, args.plan
        self.node_names = [n.name for n in plan.nodes]
        self.control_plane = plan.control_plane.name
        self.network_name = plan.network_name

        self.network = docker.Network(
            f"{name}-network",
            name=plan.network_name,
            driver="bridge",
            ipam_configs=[
                docker.NetworkIpamConfigArgs(
                    subnet=str(plan.underlay), gateway=str(plan.gateway), ip_range=str(plan.node_range)
                )
            ],
            options={
                "com.docker.network.driver.mtu": str(UNDERLAY_MTU),
                "com.docker.network.bridge.enable_ip_masquerade": "true",
            },
            labels=[docker.NetworkLabelArgs(label=k, value=v) for k, v in plan.labels],
            # Its replacement keeps the name, and nodes must leave it first.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )

        kubeconfig_file = kubeconfig_path(config)
        # Only what shapes the cluster is an input here, and any change to it replaces the
        # cluster: the mode, the underlay and the planned node pod CIDRs (triggers: Cilium
        # cannot switch routing mode in place, nodes cannot move networks, a node's podCIDR is
        # immutable), the kind config (image, node count, subnets). A new Cilium version or a
        # route never reaches it.
        self.cluster = command.local.Command(
            f"{name}-cluster",
            create=script("kind/create"),
            # Editing a script (even a comment) must not rebuild the cluster: only what shapes it
            # (kind config, environment, triggers) replaces it; anything else updates in place.
            update=script("noop"),
            delete=script("kind/delete"),
            interpreter=INTERPRETER,
            stdin=kind_config.render(config),
            environment={
                "LAB_CLUSTER": config.cluster_name,
                "LAB_NETWORK": plan.network_name,
                "LAB_KUBECONFIG": kubeconfig_file,
                # Only for an image built on this host: the script checks the engine has it.
                **({"LAB_LOCAL_IMAGE": config.node_image.ref} if config.node_image.must_be_local else {}),
            },
            triggers=[
                config.mode.value,
                str(plan.underlay),
                *(f"{n}={c}" for n, c in plan.pod_cidrs.items()),
            ],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.network],
                replace_on_changes=["stdin", "environment", "triggers"],
                delete_before_replace=True,  # the new cluster reuses the name
            ),
        )
        on_cluster = pulumi.ResourceOptions(parent=self, depends_on=[self.cluster], deleted_with=self.cluster)

        nodes = command.local.Command(
            f"{name}-nodes",
            create=script("kind/nodes"),
            interpreter=INTERPRETER,
            environment={"LAB_NETWORK": plan.network_name},
            triggers=[self.cluster.id],
            opts=on_cluster,
        )
        self.node_ips = nodes.stdout.apply(
            lambda out: parse_node_ips(out, self.node_names, plan.network_name)
        )

        kubeconfig_cmd = command.local.Command(
            f"{name}-kubeconfig",
            create=script("kind/kubeconfig"),
            interpreter=INTERPRETER,
            environment={"LAB_CLUSTER": config.cluster_name},
            triggers=[self.cluster.id],
            logging=command.local.Logging.STDERR,  # never print the kubeconfig
            opts=pulumi.ResourceOptions.merge(
                on_cluster, pulumi.ResourceOptions(additional_secret_outputs=["stdout"])
            ),
        )
        self.kubeconfig = pulumi.Output.secret(kubeconfig_cmd.stdout)

        # Resources that need the nodes to carry their planned pod CIDRs depend on this.
        self.nodes_ready: pulumi.Resource = nodes
        if plan.pod_cidrs:
            self.nodes_ready = command.local.Command(
                f"{name}-pod-cidrs",
                create=script("kind/pod-cidrs"),
                interpreter=INTERPRETER,
                environment={
                    "LAB_CONTROL_PLANE": self.control_plane,
                    "LAB_POD_CIDRS": " ".join(f"{node}={cidr}" for node, cidr in plan.pod_cidrs.items()),
                },
                triggers=[self.cluster.id],
                opts=on_cluster,
            )

        # On a machine with no registry (the offline switch): the images the nodes run go into every
        # node before anything would pull them.
        self.images_loaded: list[pulumi.Resource] = []
        if config.offline is not None:
            images = config.offline.node_images()
            self.images_loaded.append(
                command.local.Command(
                    f"{name}-images",
                    create=script("kind/load-images"),
                    interpreter=INTERPRETER,
                    environment={"LAB_CLUSTER": config.cluster_name, "LAB_IMAGES": " ".join(images)},
                    triggers=[self.cluster.id, *images],
                    opts=on_cluster,
                )
            )

        # Every in-cluster resource uses this provider: never the user's ambient kubeconfig,
        # and a cluster deleted out of band does not block `pulumi destroy`.
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            delete_unreachable=True,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, deleted_with=self.cluster),
        )

        self.register_outputs(
            {
                "nodeNames": self.node_names,
                "nodeIps": self.node_ips,
                "podCidrs": plan.pod_cidrs,
                "network": plan.network_name,
                "kubeconfig": self.kubeconfig,
            }
        )
