"""The lab's kinds of Docker objects through the docker plugin, with the real pulumi_docker SDK.

What components/kind_cluster.py, frr_router.py and verify.py create, in small: a bridge network with
an explicit subnet, gateway, IP range, MTU option and labels; a privileged container with a fixed
address and an alias on it, sysctls, added capabilities, an uploaded file and a restart policy; and a
container in that one's network namespace (`network_mode="container:<name>"`). The test sets
DOCKERTEST_PREFIX (every name starts with it), DOCKERTEST_SUBNET (a free private /28),
DOCKERTEST_IMAGE (an image already in the engine) and DOCKERTEST_UPLOAD (the uploaded content).
"""

import ipaddress
import os

import pulumi
import pulumi_docker as docker

prefix = os.environ["DOCKERTEST_PREFIX"]
subnet = ipaddress.ip_network(os.environ["DOCKERTEST_SUBNET"])
hosts = list(subnet.hosts())
node_range = next(subnet.subnets(prefixlen_diff=1))  # dynamic addresses low, the router's fixed one high
labels = {"cdl.dockertest": prefix}
# PID 1 that stops at once on SIGTERM (a bare sleep would make every stop wait for the kill).
idle = "trap 'exit 0' TERM; while :; do sleep 1; done"

network = docker.Network(
    "network",
    name=f"{prefix}-net",
    driver="bridge",
    ipam_configs=[
        docker.NetworkIpamConfigArgs(subnet=str(subnet), gateway=str(hosts[0]), ip_range=str(node_range))
    ],
    options={
        "com.docker.network.driver.mtu": "1400",
        "com.docker.network.bridge.enable_ip_masquerade": "true",
    },
    labels=[docker.NetworkLabelArgs(label=k, value=v) for k, v in labels.items()],
    opts=pulumi.ResourceOptions(delete_before_replace=True),
)
image = docker.RemoteImage("image", name=os.environ["DOCKERTEST_IMAGE"], keep_locally=True)
router = docker.Container(
    "router",
    name=f"{prefix}-router",
    hostname="router",
    image=image.image_id,
    networks_advanced=[
        docker.ContainerNetworksAdvancedArgs(
            name=network.name, ipv4_address=str(hosts[-1]), aliases=["router"]
        )
    ],
    entrypoints=["/bin/sh", "-c"],
    command=[idle],
    privileged=True,
    # Spelled as Docker reports them back: kreuzwerker's provider reads CapAdd as the engine stores it
    # (CAP_NET_ADMIN for NET_ADMIN), with no diff suppression, so after a refresh the short spelling
    # would differ from the state, and capabilities force a replacement.
    capabilities=docker.ContainerCapabilitiesArgs(adds=["CAP_NET_ADMIN", "CAP_NET_RAW"]),
    sysctls={"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.send_redirects": "0"},
    uploads=[docker.ContainerUploadArgs(file="/etc/cdl/probe.conf", content=os.environ["DOCKERTEST_UPLOAD"])],
    restart="unless-stopped",
    must_run=True,
    labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in labels.items()],
    # Unlike the lab, no delete_before_replace here: a replacement that keeps the name must work from
    # the plugin's own mapping (pulumi-docker's Container is delete-before-replace).
    opts=pulumi.ResourceOptions(depends_on=[network]),
)
sidecar = docker.Container(
    "sidecar",
    name=f"{prefix}-sidecar",
    image=image.image_id,
    network_mode=router.name.apply(lambda name: f"container:{name}"),
    command=["/bin/sh", "-c", idle],
    privileged=True,
    must_run=True,
    labels=[
        *(docker.ContainerLabelArgs(label=k, value=v) for k, v in labels.items()),
        docker.ContainerLabelArgs(label="cdl.dockertest.joins", value=router.id),
    ],
    # The lab's sidecar options (components/verify.py): Docker reports container:<id>, not <name>.
    opts=pulumi.ResourceOptions(
        depends_on=[router],
        replace_on_changes=["*"],
        delete_before_replace=True,
        ignore_changes=["networkMode"],
    ),
)
pulumi.export("network", network.id)
pulumi.export("router", router.id)
pulumi.export("sidecar", sidecar.id)
pulumi.export("address", str(hosts[-1]))
