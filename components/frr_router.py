"""FrrRouter: an FRR container on the lab network that the Cilium nodes peer with over BGP."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.kind_cluster import KindCluster
from lab.config import LabConfig
from lab.frr import frr_spec, render_frr_files
from lab.plan import AddressPlan

FRR_IMAGE = "quay.io/frrouting/frr:10.7.0"
# The router forwards node-to-node traffic back onto the network it came from: without this,
# it would answer every forwarded packet with an ICMP redirect (and muddy the captures).
_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.fib_multipath_hash_policy": "1",  # hash L4 ports, so flows to the VIP spread
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
}


@dataclass(frozen=True)
class FrrRouterArgs:
    config: LabConfig
    plan: AddressPlan
    cluster: KindCluster
    index: int  # which of the plan's routers (0-based)


class FrrRouter(pulumi.ComponentResource):
    """FRR 10.7 with the lab's rendered frr.conf, daemons and vtysh.conf uploaded before start,
    a fixed address from the top of the underlay, and the sysctls a router needs."""

    def __init__(self, name: str, args: FrrRouterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lab:index:FrrRouter", name, None, opts)
        spec = frr_spec(args.config, args.plan, args.index)
        self.hostname = spec.hostname  # == plan.router_names[index]
        self.address = str(spec.router_id)
        files = render_frr_files(spec)
        image = docker.RemoteImage(
            f"{name}-image", name=FRR_IMAGE, keep_locally=True, opts=pulumi.ResourceOptions(parent=self)
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
                    # Per-endpoint sysctl (Docker Engine >= 27.0, moby#47686; preflight checks it):
                    # redirects off on the lab interface too.
                    driver_opts=["com.docker.network.endpoint.sysctls=net.ipv4.conf.IFNAME.send_redirects=0"],
                )
            ],
            capabilities=docker.ContainerCapabilitiesArgs(adds=["NET_ADMIN", "NET_RAW", "SYS_ADMIN"]),
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
        self.register_outputs({"name": spec.hostname, "address": self.address, "asn": spec.asn})
