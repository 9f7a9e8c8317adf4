"""The node's DNS script (supply/images/kind-node/files/kind/bin/docker-dns.sh): cases the shell
mutation harness (bench/mutation/shell.py) found no test for. The transforms run anywhere; the
boot step runs, as root, in the network namespaces of tests/test_node_dns.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_node_dns import MARK, NAT, NODE_IP, SCRIPT, TCP_PORT, UDP_PORT, _script, namespaces

__all__ = ["namespaces"]  # the fixture, shared with test_node_dns.py

DNAT_UDP = f"-A CDL-DOCKER-DNS -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:{UDP_PORT}"
DNAT_TCP = f"-A CDL-DOCKER-DNS -p tcp -m tcp --dport 53 -j DNAT --to-destination 127.0.0.11:{TCP_PORT}"


def _with(*extra: str) -> str:
    """Docker's nat table with more rules after its own (iptables-save keeps a chain's order)."""
    return NAT.replace("COMMIT", "\n".join(extra) + "\nCOMMIT")


def test_an_octet_of_255_is_an_address() -> None:
    done = _script("rules", "172.30.255.2", stdin=NAT)
    assert done.returncode == 0, done.stderr
    assert "-A PREROUTING -d 172.30.255.2/32 -j CDL-DOCKER-DNS" in done.stdout.splitlines()


def test_more_arguments_than_the_address_are_a_usage_error() -> None:
    for command in ("rules", "resolv"):
        done = _script(command, "172.30.91.2", "extra", stdin=NAT)
        assert (done.returncode, done.stdout) == (2, ""), command
        assert f"usage: {SCRIPT} {command} NODE_IP" in done.stderr


@pytest.mark.parametrize(
    "other",
    [
        # Port 5353 (mDNS) in Docker's chain, and port 53 in a chain that is not Docker's.
        "-A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 127.0.0.11:1111",
        "-A OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:2222",
        "-A KUBE-KUBELET-CANARY -d 127.0.0.11/32 -p tcp -m tcp --dport 53 -j DNAT --to-destination 127.0.0.11:3333",
    ],
    ids=["mdns-in-docker-output", "port-53-in-output", "port-53-in-another-chain"],
)
def test_only_dockers_own_rules_for_port_53_name_the_resolvers_ports(other: str) -> None:
    done = _script("rules", "172.30.91.2", stdin=_with(other))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert DNAT_UDP in lines and DNAT_TCP in lines
    assert [line for line in lines if "--to-destination" in line] == [DNAT_UDP, DNAT_TCP]


def test_a_dnat_to_a_port_range_is_not_a_resolver_port() -> None:
    ranged = NAT.replace(f"127.0.0.11:{UDP_PORT}\n", f"127.0.0.11:{UDP_PORT}-{UDP_PORT + 1}\n")
    assert ranged != NAT
    done = _script("rules", "172.30.91.2", stdin=ranged)
    assert (done.returncode, done.stdout) == (1, "")


def test_resolv_keeps_a_last_line_without_a_newline() -> None:
    done = _script("resolv", "172.30.91.2", stdin="search example.test\nnameserver 127.0.0.11")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"search example.test\n{MARK}\nnameserver 172.30.91.2\n"
    kept = _script("resolv", "172.30.91.2", stdin="nameserver 127.0.0.11\noptions ndots:0")
    assert kept.stdout == f"{MARK}\nnameserver 172.30.91.2\noptions ndots:0\n"


@pytest.mark.parametrize("other", ["127.0.0.1", "127.0.0.12", "127.0.0.110"])
def test_only_dockers_127_0_0_11_is_replaced(other: str) -> None:
    done = _script("resolv", "172.30.91.2", stdin=f"nameserver {other}\nnameserver 127.0.0.11\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"nameserver {other}\n{MARK}\nnameserver 172.30.91.2\n"


# --- The boot step for real, in network namespaces (root).


def _in(ns: str, *argv: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=True
    ).stdout


def _apply(node: str, backend: str, tools: Path) -> subprocess.CompletedProcess[str]:
    for tool in ("save", "restore"):
        link = tools / f"iptables-{tool}"
        if not link.exists():
            link.symlink_to(shutil.which(f"iptables-{backend}-{tool}") or "")
    return subprocess.run(
        ["ip", "netns", "exec", node, "bash", str(SCRIPT), "apply"],
        env={**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("namespaces", ["legacy", "nft"], indirect=True)
def test_apply_adds_to_dockers_rules_and_the_nodes_own_filter_rules(
    namespaces: tuple[str, str, Path], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    node, _, _ = namespaces
    backend = request.node.callspec.params["namespaces"]
    _in(node, f"iptables-{backend}", "-A", "INPUT", "-p", "tcp", "--dport", "10250", "-j", "ACCEPT")
    done = _apply(node, backend, tmp_path)
    assert done.returncode == 0, done.stderr
    nat = _in(node, f"iptables-{backend}-save", "-t", "nat").splitlines()
    docker_rules = [line for line in NAT.splitlines() if line.startswith("-A ")]
    assert [line for line in nat if line in docker_rules] == docker_rules  # Docker's, all still there
    assert "-A PREROUTING -d 192.0.2.2/32 -j CDL-DOCKER-DNS" in nat
    saved = _in(node, f"iptables-{backend}-save", "-t", "filter").splitlines()
    assert "-A INPUT -p tcp -m tcp --dport 10250 -j ACCEPT" in saved
    assert _in(node, "cat", "/proc/sys/net/ipv4/conf/all/route_localnet").strip() == "1"


@pytest.fixture
def bare_node() -> Iterator[tuple[str, Path]]:
    """A node namespace on a Docker network whose resolv.conf names 127.0.0.11, but with no Docker
    DNS rules (another engine, or rules lost)."""
    if os.geteuid() != 0 or not all(
        shutil.which(t) for t in ("ip", "iptables-legacy-restore", "iptables-legacy-save")
    ):
        pytest.skip("needs root, iproute2 and iptables-legacy")
    node = f"cdlt-dns-bare-{os.getpid()}"
    etc = Path("/etc/netns") / node
    try:
        subprocess.run(["ip", "netns", "add", node], check=True, capture_output=True)
        for args in (
            ["link", "add", "eth0", "type", "veth", "peer", "name", "gw0"],
            ["link", "set", "gw0", "up"],
            ["addr", "add", f"{NODE_IP}/24", "dev", "eth0"],
            ["link", "set", "eth0", "up"],
            ["route", "add", "default", "via", "192.0.2.1"],
        ):
            subprocess.run(["ip", "-n", node, *args], check=True, capture_output=True)
        etc.mkdir(parents=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.11\noptions ndots:0\n")
        yield node, etc / "resolv.conf"
    finally:
        shutil.rmtree(etc, ignore_errors=True)
        subprocess.run(["ip", "netns", "del", node], capture_output=True, check=False)


def test_apply_without_dockers_rules_leaves_resolv_conf_and_the_tables_alone(
    bare_node: tuple[str, Path], tmp_path: Path
) -> None:
    node, resolv = bare_node
    done = _apply(node, "legacy", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "this namespace has no Docker DNS rules; left as it is" in done.stderr
    assert resolv.read_text() == "nameserver 127.0.0.11\noptions ndots:0\n"
    assert "CDL-DOCKER-DNS" not in _in(node, "iptables-legacy-save")
    assert _in(node, "cat", "/proc/sys/net/ipv4/conf/all/route_localnet").strip() == "0"
