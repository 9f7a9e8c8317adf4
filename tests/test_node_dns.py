"""The node's DNS fix (supply/images/kind-node/files/kind/bin/docker-dns.sh): Docker's embedded DNS at
127.0.0.11 is the pod itself inside a pod's namespace, so the node makes it answer on the node's IP
too. Its two transforms against a real node's `iptables-save -t nat` and resolv.conf, and, as root,
the whole boot step in network namespaces on both iptables backends: a "pod" namespace reaches a
stand-in resolver on 127.0.0.11 through the node's IP only after it ran."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "supply" / "images" / "kind-node" / "files" / "kind" / "bin" / "docker-dns.sh"
NAT = (Path(__file__).resolve().parent / "data" / "node_dns" / "docker-nat.rules").read_text()
MARK = "# cdl-node: Docker's embedded DNS (127.0.0.11) on this node's IP (/kind/bin/docker-dns.sh)"
# The resolver's ports in docker-nat.rules.
UDP_PORT, TCP_PORT = 53199, 45167


def _script(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], input=stdin, capture_output=True, text=True, check=False
    )


def test_rules_send_the_node_ip_port_53_to_the_resolver_ports_docker_chose() -> None:
    done = _script("rules", "172.30.91.2", stdin=NAT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "-A PREROUTING -d 172.30.91.2/32 -j CDL-DOCKER-DNS" in lines  # from pods
    assert "-A OUTPUT -d 172.30.91.2/32 -j CDL-DOCKER-DNS" in lines  # from the node itself
    assert (
        f"-A CDL-DOCKER-DNS -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:{UDP_PORT}" in lines
    )
    assert (
        f"-A CDL-DOCKER-DNS -p tcp -m tcp --dport 53 -j DNAT --to-destination 127.0.0.11:{TCP_PORT}" in lines
    )
    # route_localnet is needed for that DNAT; everything else for 127/8 from outside lo is dropped.
    assert "-A INPUT -d 127.0.0.0/8 ! -i lo -j CDL-DOCKER-DNS" in lines
    assert lines.index("-A CDL-DOCKER-DNS -m conntrack --ctstate DNAT -j RETURN") + 1 == lines.index(
        "-A CDL-DOCKER-DNS -j DROP"
    )


@pytest.mark.parametrize(
    "nat",
    [
        "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n",  # a default bridge or another engine: no embedded DNS
        "\n".join(line for line in NAT.splitlines() if "-p tcp" not in line),  # half of Docker's rules
    ],
)
def test_rules_do_nothing_without_both_of_dockers_dns_rules(nat: str) -> None:
    done = _script("rules", "172.30.91.2", stdin=nat)
    assert (done.returncode, done.stdout) == (1, "")


@pytest.mark.parametrize("ip", ["172.30.91.256", "172.30.91.2/24", "172.30.91.2 -j ACCEPT", ""])
def test_an_address_that_is_not_plain_ipv4_is_refused(ip: str) -> None:
    for command in ("rules", "resolv"):
        done = _script(command, ip, stdin=NAT)
        assert (done.returncode, done.stdout) == (2, ""), (command, ip)


def test_resolv_names_the_node_ip_instead_of_127_0_0_11_and_keeps_the_rest() -> None:
    done = _script(
        "resolv", "172.30.91.2", stdin="search example.test\nnameserver 127.0.0.11\noptions ndots:0\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"search example.test\n{MARK}\nnameserver 172.30.91.2\noptions ndots:0\n"


def test_resolv_after_a_restart_rewrites_its_own_line_once() -> None:
    """Docker keeps a resolv.conf the container changed: the line written last boot is replaced."""
    before = f"{MARK}\nnameserver 172.30.91.2\nnameserver 192.0.2.53\noptions ndots:0\n"
    done = _script("resolv", "172.30.91.7", stdin=before)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{MARK}\nnameserver 172.30.91.7\nnameserver 192.0.2.53\noptions ndots:0\n"


def test_resolv_leaves_a_file_without_dockers_dns_alone() -> None:
    done = _script("resolv", "172.30.91.2", stdin="nameserver 192.0.2.53\nnameserver 127.0.0.1\n")
    assert (done.returncode, done.stdout) == (1, "")


# --- The boot step for real, in network namespaces (root).

_BACKENDS = ("legacy", "nft")
# A stand-in for Docker's resolver on its two ports: answers every datagram with b"answer:" + it, and
# accepts TCP connections.
_RESOLVER = f"""
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.11", {UDP_PORT}))
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.11", {TCP_PORT})); t.listen(8)
print("ready", flush=True)
while True:
    data, peer = u.recvfrom(512); u.sendto(b"answer:" + data, peer)
"""
_CLIENT = """
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
u.sendto(b"q", (sys.argv[1], 53))
try:
    print(u.recvfrom(512)[0].decode())
except OSError as exc:
    print(f"udp: {exc}")
try:
    socket.create_connection((sys.argv[1], 53), timeout=2).close(); print("tcp: connected")
except OSError as exc:
    print(f"tcp: {exc}")
"""
NODE_IP, POD_IP = "192.0.2.2", "198.51.100.2"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def namespaces(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, Path]]:
    """A node namespace (Docker's DNS rules, a stand-in resolver on 127.0.0.11, an /etc/netns
    resolv.conf naming it) and a pod namespace routed through it; all removed afterwards."""
    backend: str = request.param
    if os.geteuid() != 0 or not all(
        shutil.which(t) for t in ("ip", f"iptables-{backend}-restore", f"iptables-{backend}-save")
    ):
        pytest.skip(f"needs root, iproute2 and iptables-{backend}")
    node, pod = f"cdlt-dns-node-{os.getpid()}", f"cdlt-dns-pod-{os.getpid()}"
    etc = Path("/etc/netns") / node
    resolver: subprocess.Popen[str] | None = None
    try:
        _ip("netns", "add", node)
        _ip("netns", "add", pod)
        probe = subprocess.run(
            ["ip", "netns", "exec", node, f"iptables-{backend}-save", "-t", "nat"],
            capture_output=True,
            check=False,
        )
        if probe.returncode != 0:
            pytest.skip(f"iptables-{backend} does not work in a new namespace here: {probe.stderr!r}")
        _ip("-n", node, "link", "set", "lo", "up")
        _ip("-n", node, "link", "add", "eth0", "type", "veth", "peer", "name", "gw0")  # the Docker network
        _ip("-n", node, "link", "set", "gw0", "up")
        _ip("-n", node, "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
        _ip("-n", node, "link", "set", "eth0", "up")
        _ip("-n", node, "route", "add", "default", "via", "192.0.2.1")
        _ip("-n", node, "link", "add", "lxc0", "type", "veth", "peer", "name", "eth0", "netns", pod)
        _ip("-n", node, "addr", "add", "198.51.100.1/24", "dev", "lxc0")
        _ip("-n", node, "link", "set", "lxc0", "up")
        _ip("-n", pod, "addr", "add", f"{POD_IP}/24", "dev", "eth0")
        _ip("-n", pod, "link", "set", "eth0", "up")
        _ip("-n", pod, "route", "add", "default", "via", "198.51.100.1")
        subprocess.run(
            ["ip", "netns", "exec", node, f"iptables-{backend}-restore"], input=NAT, text=True, check=True
        )
        etc.mkdir(parents=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.11\noptions ndots:0\n")
        resolver = subprocess.Popen(
            ["ip", "netns", "exec", node, sys.executable, "-c", _RESOLVER], stdout=subprocess.PIPE, text=True
        )
        assert resolver.stdout is not None and resolver.stdout.readline().strip() == "ready"
        yield node, pod, etc / "resolv.conf"
    finally:
        if resolver is not None:
            resolver.kill()
            resolver.wait()
        shutil.rmtree(etc, ignore_errors=True)
        for ns in (pod, node):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _ask(pod: str) -> list[str]:
    done = subprocess.run(
        ["ip", "netns", "exec", pod, sys.executable, "-c", _CLIENT, NODE_IP],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


@pytest.mark.parametrize("namespaces", _BACKENDS, indirect=True)
def test_apply_makes_the_resolver_answer_pods_on_the_node_ip(
    namespaces: tuple[str, str, Path], request: pytest.FixtureRequest
) -> None:
    node, pod, resolv = namespaces
    backend = request.node.callspec.params["namespaces"]
    before = _ask(pod)
    assert before[0].startswith("udp: ") and before[1].startswith("tcp: "), before  # no answer yet
    with tempfile.TemporaryDirectory() as tools:
        # iptables-save/-restore as the entrypoint's update-alternatives leaves them.
        for tool in ("save", "restore"):
            os.symlink(shutil.which(f"iptables-{backend}-{tool}") or "", Path(tools) / f"iptables-{tool}")
        done = subprocess.run(
            ["ip", "netns", "exec", node, "bash", str(SCRIPT), "apply"],
            env={**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"},
            capture_output=True,
            text=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert f"answers on {NODE_IP}:53" in done.stderr
    assert resolv.read_text() == f"{MARK}\nnameserver {NODE_IP}\noptions ndots:0\n"
    assert _ask(pod) == ["answer:q", "tcp: connected"]
