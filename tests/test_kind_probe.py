"""The kind probe, end to end, against a replica behind a fake `docker` CLI.

The fake translates exactly the docker/kubectl argv shapes the kind probe emits into the
replica's namespaces (sidecar -> node namespace, `kubectl exec` -> pod namespace, the Cilium
agent -> node namespace, `kubectl get` -> the replica's control-plane answers). So this runs the
real probe code — topology from LAB_TOPOLOGY plus the cluster, captures streamed through
`docker exec`, tcpdump stopped by its recorded PID — and the real checks on a real datapath.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from labsupport import needs_replica

from lab.config import parse_config
from lab.plan import plan
from verify import catalogue, kind
from verify.checks import Context, Status
from verify.kind import topology_spec
from verify.replica import Replica

pytestmark = needs_replica

FAKE_DOCKER = f"""#!{sys.executable}
import os, sys
args = sys.argv[1:]
assert args[0] == "exec", args
args = args[1:]
if args[0] == "-i":
    args = args[1:]
prefix, kube = os.environ["REPLICA_PREFIX"], os.environ["FAKE_KUBE_DIR"]
container, rest = args[0], args[1:]

def netns(name, argv):
    os.execvp("ip", ["ip", "netns", "exec", prefix + name, *argv])

if container.startswith("cdl-tools-"):
    netns(container.removeprefix("cdl-tools-"), rest)
assert rest[:3] == ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"], rest
k = rest[3:]
if k[:2] == ["-n", "kube-system"] and k[2] == "get":  # the agent pod on a node
    node = k[k.index("--field-selector") + 1].split("=", 1)[1]
    print("pod/cilium-" + node)
elif k[:2] == ["-n", "kube-system"] and k[2] == "exec":
    dash = k.index("--")
    netns(k[3].removeprefix("pod/cilium-"), k[dash + 1:])
elif k[:3] == ["-n", "cdl-verify", "exec"]:
    netns(k[3], k[k.index("--") + 1:])
elif k[0] == "get":
    sys.stdout.write(open(os.path.join(kube, k[1] + ".json")).read())
else:
    sys.exit("fake docker: unexpected " + repr(args))
"""


@pytest.fixture(scope="module", params=["overlay", "native-auto"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[kind.KindProbe]:
    mode: str = request.param
    tmp = tmp_path_factory.mktemp(f"kind-{mode}")
    (tmp / "bin").mkdir()
    (tmp / "bin" / "docker").write_text(FAKE_DOCKER)
    (tmp / "bin" / "docker").chmod(0o755)
    with Replica(mode, prefix=f"cdltk{mode[:2]}-") as rep:
        for resource in ("pods", "ciliumnodes"):
            (tmp / f"{resource}.json").write_text(rep.kube_get(resource).stdout)
        old_path = os.environ["PATH"]
        os.environ.update(
            {"PATH": f"{tmp / 'bin'}:{old_path}", "REPLICA_PREFIX": rep.prefix, "FAKE_KUBE_DIR": str(tmp)}
        )
        try:
            # What the Verify resource hands the probe: the program's own topology spec.
            config = parse_config(
                {"mode": mode, "clusterName": "replica", "underlaySubnet": str(rep.underlay)}, mode
            )
            spec = topology_spec(config, plan(config), {n.name: str(n.ip) for n in rep.topology.nodes}, [])
            yield kind.connect("replica-control-plane", spec)
        finally:
            os.environ["PATH"] = old_path


def test_topology_comes_from_the_spec_and_the_cluster(lab: kind.KindProbe) -> None:
    topo = lab.topology
    assert [n.name for n in topo.nodes] == ["replica-control-plane", "replica-worker", "replica-worker2"]
    assert all(n.pod_cidr is not None for n in topo.nodes)  # native-auto: read from CiliumNodes
    assert {p.name: p.node for p in topo.pods} == {
        "pod-a": "replica-worker",
        "pod-b": "replica-worker",
        "pod-c": "replica-worker2",
    }


def test_every_check_of_the_mode_passes_through_the_kind_probe(lab: kind.KindProbe, tmp_path: Path) -> None:
    ctx = Context(artifacts=tmp_path, mode=lab.topology.mode)
    results = {c.id: c.run(lab, ctx) for c in catalogue.for_stack(lab.topology.mode)}
    failed = {k: v.findings for k, v in results.items() if v.status is not Status.PASS}
    assert failed == {}
    capture = "overlay.capture" if lab.topology.mode == "overlay" else "native.capture"
    (pcap,) = tmp_path.glob(f"{capture}-*.pcap")
    assert pcap.stat().st_size > 24  # streamed through `docker exec`: more than a pcap header


def test_a_failing_command_is_reported_not_raised(lab: kind.KindProbe) -> None:
    result = lab.node_exec("replica-worker", ["ip", "link", "show", "dev", "no-such-device"])
    assert not result.ok and "no-such-device" in result.stderr
    assert result.describe().startswith(
        "[node replica-worker] $ docker exec cdl-tools-replica-worker ip link"
    )


def test_topology_spec_is_deterministic_json() -> None:
    config = parse_config({"mode": "static"}, "static")
    ips = {
        "static-control-plane": "172.30.4.2",
        "static-worker": "172.30.4.3",
        "static-worker2": "172.30.4.4",
    }
    first = topology_spec(
        config, plan(config), ips, [{"node": "static-worker", "dest": "10.10.0.0/27", "via": "172.30.4.2"}]
    )
    assert first == topology_spec(
        config,
        plan(config),
        dict(reversed(list(ips.items()))),
        json.loads(json.dumps([{"node": "static-worker", "dest": "10.10.0.0/27", "via": "172.30.4.2"}])),
    )
    assert json.loads(first)["nodes"][1] == {
        "name": "static-worker",
        "ip": "172.30.4.3",
        "podCidr": "10.10.0.32/27",
    }
