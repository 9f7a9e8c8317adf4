"""FrrRouter: an FRR container on the lab network that the Cilium nodes peer with over BGP."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.kind_cluster import KindCluster
from lab.config import LabConfig
from lab.frr import frr_spec, render_frr_files
from lab.plan import AddressPlan
from lab.scripts import INTERPRETER, script

# The upstream image's own ENTRYPOINT + CMD (FRRouting/frr docker/alpine/Dockerfile at frr-10.7.0):
# tini as PID 1, then watchfrr. The image built from Debian's frr (supply/images/frr/) has both at
# the same paths. It runs after scripts/frr/redirects-off.sh; change it with the images.
FRR_START = ("/sbin/tini", "--", "/usr/lib/frr/docker-start")
# The router forwards node-to-node traffic back onto the network it came from: without this,
# it would answer forwarded packets with ICMP redirects (and muddy the captures). The kernel
# sends one when `all` OR the interface allows it, and a container's interfaces arrive with 1:
# the entrypoint (scripts/frr/redirects-off.sh) sets every interface to 0 from inside, which
# works on Docker Engine 20.10 and every later one. Not an `eth0` container sysctl (Engine 28.0
# refuses one) nor a per-endpoint sysctl (Engine 27.0+).
_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.fib_multipath_hash_policy": "1",  # hash L4 ports, so flows to the VIP spread
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
}
# /proc/sys is read-only in a container: the entrypoint remounts it (CAP_SYS_ADMIN), which
# AppArmor's docker-default profile denies ("deny mount"), as it denies writes under
# /proc/sys/net. Hosts without AppArmor ignore the option.
_SECURITY_OPTS = ["apparmor=unconfined"]
# How long FRR may take to start and read its configuration (it takes a few seconds).
READY_TIMEOUT_SECONDS = 120


def entrypoint() -> list[str]:
    """`sh -c <redirects-off.sh> redirects-off`, given FRR_START as its arguments."""
    return ["/bin/sh", "-c", script("frr/redirects-off"), "redirects-off"]


@dataclass(frozen=True)
class FrrRouterArgs:
    config: LabConfig
    plan: AddressPlan
    cluster: KindCluster
    index: int  # which of the plan's routers (0-based)


class FrrRouter(pulumi.ComponentResource):
    """FRR 10.7 with the lab's rendered frr.conf, daemons and vtysh.conf uploaded before start,
    a fixed address from the top of the underlay, the sysctls a router needs, and ICMP
    redirects off on its interfaces before FRR starts."""

    def __init__(self, name: str, args: FrrRouterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lab:index:FrrRouter", name, None, opts)
        spec = frr_spec(args.config, args.plan, args.index)
        self.hostname = spec.hostname  # == plan.router_names[index]
        self.address = str(spec.router_id)
        files = render_frr_files(spec)
        self.files = files  # what this router is told (the checks run again when it changes)
        image = docker.RemoteImage(
            f"{name}-image",
            name=args.config.frr_image,
            keep_locally=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.container = docker.Container(
            f"{name}-container",
            name=spec.hostname,
            hostname=spec.hostname,
            image=image.image_id,
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=args.cluster.network.name,
                    ipv4_address=self.address,
                )
            ],
            entrypoints=entrypoint(),
            command=list(FRR_START),
            # Spelt as Docker stores them: kreuzwerker's provider reads `CAP_NET_ADMIN` back with no
            # diff suppression, so `NET_ADMIN` would replace the router after a `pulumi refresh`.
            capabilities=docker.ContainerCapabilitiesArgs(
                adds=["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN"]
            ),
            security_opts=_SECURITY_OPTS,
            sysctls=_SYSCTLS,
            uploads=[
                docker.ContainerUploadArgs(file=f"/etc/frr/{filename}", content=content)
                for filename, content in sorted(files.items())
            ],
            restart="unless-stopped",
            must_run=True,
            labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in args.plan.labels],
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[args.cluster.network], delete_before_replace=True
            ),
        )
        # Up only when FRR runs the whole rendered config: a line FRR skipped fails the router here,
        # quoted (scripts/frr/ready.sh). A new container is read again.
        self.ready = command.local.Command(
            f"{name}-ready",
            create=script("frr/ready"),
            interpreter=INTERPRETER,
            environment={"LAB_ROUTER": spec.hostname, "LAB_TIMEOUT": str(READY_TIMEOUT_SECONDS)},
            triggers=[self.container.id],
            # Nothing to undo on delete; gone with the lab, as every command without a delete is.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.container], deleted_with=args.cluster.cluster
            ),
        )
        self.register_outputs({"name": spec.hostname, "address": self.address, "asn": spec.asn})
