"""Smoke run of the offline Cilium images on a real kind cluster: do the agents become Ready here?

Creates a kind cluster (`kind_config.smoke_cluster`: no default CNI, no kube-proxy) from the built
node image on a Docker network of its own, loads the agent and operator images `make cilium-images`
built into the nodes, and installs the packed chart (`make chart`) with the lab's overlay values
(`lab.cilium.helm_values`) plus cilium/values-offline.yaml, through a throwaway
Pulumi program with the real kubernetes provider's helm.v3.Release (as the lab installs Cilium).
Then it waits, printing progress, for the cilium DaemonSet and the nodes to be Ready, prints
`cilium-dbg status --brief` (then the full status, the ipcache's tunnel endpoints and, once it has
probed every node across the overlay, `cilium-health status`) from an agent, or the agents' logs if
they never get Ready. Then pod DNS: CoreDNS must be Running and Ready, and a throwaway pod (the agent
image, already loaded: nothing is pulled) must resolve `kubernetes.default.svc.cluster.local` to the
Service's ClusterIP and a worker's container name, which only Docker's embedded DNS knows, to its node
IP (CoreDNS forwards it to the node's resolv.conf: the node image's docker-dns.sh). It always deletes
the cluster and the network it created.

    .venv/bin/python bench/cilium_smoke.py [--workers 1] [--subnet 172.30.77.0/24] [--timeout 900] [--keep]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import cilium, kind_config
from lab.config import parse_config
from lab.plan import UNDERLAY_MTU, AddressPlan, plan
from supply import chart, cilium_images, toolchain
from supply import node_image as images

REPO = Path(__file__).resolve().parent.parent
PROGRAM = Path(__file__).resolve().parent / "cilium_smoke_program"
# Other runs here use 172.30.1-5.0/24 (the stacks) and 172.30.201.0/24 (the real-cluster tests).
DEFAULT_SUBNET = "172.30.77.0/24"
_TAKEN = [ipaddress.ip_network(f"172.30.{n}.0/24") for n in (1, 2, 3, 4, 5, 201)]
POLL_SECONDS = 10


def _say(message: str, t0: float) -> None:
    print(f"[cilium-smoke {time.monotonic() - t0:5.0f}s] {message}", flush=True)


def _run(argv: Sequence[str], env: Mapping[str, str], *, check: bool = True, timeout: float = 900) -> str:
    proc = subprocess.run(
        list(argv), env=dict(env), capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout + (proc.stderr if proc.returncode != 0 else "")


def offline_values(agent_tag: str, operator_tag: str) -> dict[str, Any]:
    """cilium/values-offline.yaml (the lab's offline switch) with the built images: the chart names
    the operator image `<operator.image.repository>-generic:<tag>`, so the repository loses that suffix here."""
    values: dict[str, Any] = yaml.safe_load(cilium.OFFLINE_VALUES.read_text())
    agent_repo, agent_version = agent_tag.rsplit(":", 1)
    operator_repo, operator_version = operator_tag.rsplit(":", 1)
    if not operator_repo.endswith("-generic"):
        raise ValueError(f"the operator image {operator_tag} is not named <repository>-generic:<tag>")
    values["image"].update(repository=agent_repo, tag=agent_version)
    values["operator"]["image"].update(
        repository=operator_repo.removesuffix("-generic"), tag=operator_version
    )
    return values


def _pulumi_up(
    key_dir: Path, work: Path, kubeconfig: Path, chart_path: Path, values: Mapping[str, Any], timeout: int
) -> str:
    project = work / "program"
    shutil.copytree(PROGRAM, project)
    (work / "state").mkdir()
    (work / "home").mkdir()
    (work / "values.json").write_text(json.dumps(values, indent=2))
    env = {
        **toolchain.toolchain_env(key_dir, REPO, "/usr/bin:/bin"),
        "HOME": str(work / "home"),
        "LANG": "C.UTF-8",
        "PULUMI_BACKEND_URL": (work / "state").as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": "",
        "SMOKE_KUBECONFIG": str(kubeconfig),
        "SMOKE_CHART": str(chart_path),
        "SMOKE_VALUES": str(work / "values.json"),
        "SMOKE_TIMEOUT": str(timeout),
    }
    pulumi = str(key_dir / "bin" / "pulumi")
    subprocess.run(
        [pulumi, "stack", "init", "smoke", "--secrets-provider", "passphrase", "--non-interactive"],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    proc = subprocess.run(
        [
            pulumi,
            "up",
            "--yes",
            "--skip-preview",
            "--stack",
            "smoke",
            "--non-interactive",
            "--color",
            "never",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout + 120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pulumi up of the Cilium release failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def _ready_counts(kubectl: Sequence[str], env: Mapping[str, str]) -> tuple[str, bool]:
    """A one-line progress summary, and whether the agents, the operator and every node are Ready."""
    ds = json.loads(_run([*kubectl, "-n", "kube-system", "get", "ds", "cilium", "-o", "json"], env))
    st = ds.get("status", {})
    desired, ready = st.get("desiredNumberScheduled", 0), st.get("numberReady", 0)
    op = json.loads(
        _run([*kubectl, "-n", "kube-system", "get", "deploy", "cilium-operator", "-o", "json"], env)
    )
    op_ready = op.get("status", {}).get("readyReplicas", 0) or 0
    nodes = json.loads(_run([*kubectl, "get", "nodes", "-o", "json"], env))["items"]
    node_ready = [
        any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
        for n in nodes
    ]
    pods = json.loads(
        _run([*kubectl, "-n", "kube-system", "get", "pods", "-l", "k8s-app=cilium", "-o", "json"], env)
    )["items"]
    states = []
    for pod in pods:
        statuses = pod["status"].get("initContainerStatuses", []) + pod["status"].get("containerStatuses", [])
        waiting = [
            f"{c['name']}={c['state'].get('waiting', {}).get('reason') or next(iter(c['state']), '?')}"
            for c in statuses
            if not c.get("ready", False) and c["state"].get("terminated", {}).get("reason") != "Completed"
        ]
        restarts = sum(s.get("restartCount", 0) for s in pod["status"].get("containerStatuses", []))
        states.append(
            f"{pod['metadata']['name']}:{pod['status'].get('phase')}/{','.join(waiting) or 'ok'}/r{restarts}"
        )
    line = (
        f"agents {ready}/{desired} Ready, operator {op_ready}/1, nodes {sum(node_ready)}/{len(nodes)} Ready; "
        + " ".join(states)
    )
    done = desired > 0 and ready == desired and op_ready >= 1 and all(node_ready) and len(nodes) > 0
    return line, done


def _agent_logs(kubectl: Sequence[str], env: Mapping[str, str]) -> None:
    """Why the agents are not Ready, in their own words: events, init containers, the agent (and its
    previous run)."""
    print(_run([*kubectl, "-n", "kube-system", "get", "pods", "-o", "wide"], env, check=False))
    print(
        _run([*kubectl, "-n", "kube-system", "describe", "pods", "-l", "k8s-app=cilium"], env, check=False)[
            -6000:
        ]
    )
    pods = _run(
        [*kubectl, "-n", "kube-system", "get", "pods", "-l", "k8s-app=cilium", "-o", "name"], env, check=False
    )
    for pod in pods.split()[:1]:
        for flags in (
            ["-c", "cilium-agent", "--tail", "80"],
            ["-c", "cilium-agent", "--previous", "--tail", "80"],
        ):
            print(f"--- kubectl logs {pod} {' '.join(flags)}")
            print(_run([*kubectl, "-n", "kube-system", "logs", pod, *flags], env, check=False))
    print(
        _run(
            [*kubectl, "-n", "kube-system", "logs", "deploy/cilium-operator", "--tail", "40"],
            env,
            check=False,
        )
    )


@dataclass
class Smoke:
    """One run: what it created (so teardown deletes exactly that) and how long each phase took."""

    name: str
    network: str
    work: Path
    kind: str
    kubectl: list[str]
    env: dict[str, str]
    t0: float = field(default_factory=time.monotonic)
    timings: dict[str, float] = field(default_factory=dict)
    created_network: bool = False
    created_cluster: bool = False

    def say(self, message: str) -> None:
        _say(message, self.t0)

    def create(self, node_tag: str, workers: int, lab_plan: AddressPlan) -> None:
        self.say(
            f"cluster {self.name} ({1 + workers} nodes, {node_tag}) on network {self.network} {lab_plan.underlay}"
        )
        _run(
            [
                "docker", "network", "create", "--driver", "bridge",
                "--subnet", str(lab_plan.underlay), "--gateway", str(lab_plan.gateway),
                "--ip-range", str(lab_plan.node_range),
                "--opt", f"com.docker.network.driver.mtu={UNDERLAY_MTU}", self.network,
            ],
            self.env,
        )  # fmt: skip
        self.created_network = True
        with (self.work / "kind.yaml").open("w") as fh:
            yaml.safe_dump(kind_config.smoke_cluster(self.name, node_tag, workers), fh, sort_keys=False)
        self.created_cluster = True  # kind may leave nodes behind even when it fails: always delete
        _run(
            [self.kind, "create", "cluster", "--name", self.name, "--config", str(self.work / "kind.yaml"),
             "--kubeconfig", str(self.work / "kubeconfig"), "--wait", "0s"],
            {**self.env, "KIND_EXPERIMENTAL_DOCKER_NETWORK": self.network},
        )  # fmt: skip
        self.timings["cluster"] = time.monotonic() - self.t0
        self.say(f"kind cluster created in {self.timings['cluster']:.0f}s")

    def load(self, *tags: str) -> None:
        t1 = time.monotonic()
        _run([self.kind, "load", "docker-image", "--name", self.name, *tags], self.env)
        self.timings["load"] = time.monotonic() - t1
        self.say(f"{' and '.join(tags)} loaded into the nodes in {self.timings['load']:.0f}s")

    def install(self, key_dir: Path, chart_path: Path, values: Mapping[str, Any], timeout: int) -> None:
        t1 = time.monotonic()
        self.say(f"installing {chart_path.name} with helm.v3.Release (pulumi up)")
        out = _pulumi_up(key_dir, self.work, self.work / "kubeconfig", chart_path, values, timeout)
        self.timings["install"] = time.monotonic() - t1
        self.say(f"pulumi up done in {self.timings['install']:.0f}s: {out.strip().splitlines()[-1]}")

    def wait_ready(self, timeout: int) -> bool:
        t1 = time.monotonic()
        done = False
        while time.monotonic() - t1 < timeout:
            line, done = _ready_counts(self.kubectl, self.env)
            self.say(line)
            if done:
                break
            time.sleep(POLL_SECONDS)
        self.timings["ready"] = time.monotonic() - t1
        return done

    def status(self, health_timeout: int) -> bool:
        """cilium-dbg's status and tunnel endpoints, then cilium-health until it has probed every node
        (its ICMP and HTTP probes cross the overlay); whether every node was reachable."""
        argv = [*self.kubectl, "-n", "kube-system", "exec", "ds/cilium", "-c", "cilium-agent", "--"]
        print(_run([*argv, "cilium-dbg", "status", "--brief"], self.env, check=False), flush=True)
        print(_run([*argv, "cilium-dbg", "status"], self.env, check=False), flush=True)
        print(_run([*argv, "cilium-dbg", "bpf", "ipcache", "list"], self.env, check=False), flush=True)
        t1 = time.monotonic()
        while time.monotonic() - t1 < health_timeout:
            said = _run([*argv, "cilium-health", "status"], self.env, check=False)
            self.say(said.strip().splitlines()[0] if said.strip() else "cilium-health: no answer")
            reachable = re.search(r"Cluster health:\s+(\d+)/(\d+) reachable", said)
            if reachable and int(reachable[2]) > 0 and reachable[1] == reachable[2]:
                print(said, flush=True)
                self.timings["health"] = time.monotonic() - t1
                return True
            time.sleep(POLL_SECONDS)
        return False

    def coredns_ready(self, timeout: int) -> bool:
        """Every CoreDNS pod Running and Ready (it stops with "plugin/loop: Loop detected" when its
        upstream, the node's resolv.conf, is itself); prints the pods and their restarts."""
        t1 = time.monotonic()
        while time.monotonic() - t1 < timeout:
            pods = json.loads(
                _run([*self.kubectl, "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "json"],
                     self.env)
            )["items"]  # fmt: skip
            states = [
                (
                    p["metadata"]["name"],
                    p["status"].get("phase"),
                    any(
                        c["type"] == "Ready" and c["status"] == "True"
                        for c in p["status"].get("conditions", [])
                    ),
                    sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses", [])),
                )
                for p in pods
            ]
            self.say("CoreDNS: " + " ".join(f"{n}:{ph}/ready={r}/r{rs}" for n, ph, r, rs in states))
            if states and all(ph == "Running" and r for _, ph, r, _ in states):
                self.timings["coredns"] = time.monotonic() - t1
                return True
            time.sleep(POLL_SECONDS)
        print(_run([*self.kubectl, "-n", "kube-system", "logs", "-l", "k8s-app=kube-dns", "--tail", "20"],
                   self.env, check=False))  # fmt: skip
        return False

    def lookup(self, image: str, worker: str, timeout: int) -> bool:
        """A pod resolves the API Service through CoreDNS, and a worker's container name through
        CoreDNS's upstream, Docker's embedded DNS on the node; whether both gave the right address."""
        service_ip = _run(
            [*self.kubectl, "get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"], self.env
        ).strip()
        worker_ip = _run(
            [
                "docker",
                "inspect",
                "--format",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                worker,
            ],
            self.env,
        ).strip()
        script = f"getent hosts kubernetes.default.svc.cluster.local; getent hosts {worker}."
        _run(
            [*self.kubectl, "run", "cdl-dns-probe", "--image", image, "--image-pull-policy", "Never",
             "--restart", "Never", "--command", "--", "sh", "-c", script],
            self.env,
        )  # fmt: skip
        t1, phase = time.monotonic(), ""
        while time.monotonic() - t1 < timeout:
            phase = _run(
                [*self.kubectl, "get", "pod", "cdl-dns-probe", "-o", "jsonpath={.status.phase}"], self.env
            ).strip()
            if phase in ("Succeeded", "Failed"):
                break
            time.sleep(2)
        said = _run([*self.kubectl, "logs", "cdl-dns-probe"], self.env, check=False)
        self.say(f"DNS probe pod {phase or 'never started'}: {said.strip()!r}")
        answers = {tuple(line.split()[:2]) for line in said.splitlines() if line.strip()}
        ok = (service_ip, "kubernetes.default.svc.cluster.local") in answers and any(
            a[0] == worker_ip and a[1].rstrip(".") == worker for a in answers
        )
        self.say(
            f"kubernetes.default.svc.cluster.local -> {service_ip} and {worker} -> {worker_ip}: "
            + ("both resolved" if ok else "NOT resolved as expected")
        )
        return ok

    def teardown(self) -> None:
        if self.created_cluster:
            _run([self.kind, "delete", "cluster", "--name", self.name], self.env, check=False)
        if self.created_network:
            _run(["docker", "network", "rm", self.network], self.env, check=False)
        shutil.rmtree(self.work, ignore_errors=True)
        self.say(f"deleted cluster {self.name} and network {self.network}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--subnet", default=DEFAULT_SUBNET)
    parser.add_argument("--timeout", type=int, default=900, help="seconds to wait for the agents")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args()
    subnet = ipaddress.ip_network(args.subnet)
    if any(subnet.overlaps(t) for t in _TAKEN):
        print(f"{subnet} overlaps a subnet other runs here use: pick another --subnet", file=sys.stderr)
        return 2
    env = dict(os.environ)
    node_tag, key_dir = images.current_tag(env), toolchain.current_dir(env)
    cilium_tags, chart_path = cilium_images.current_tags(env), chart.current_path(env)
    if node_tag is None or key_dir is None or cilium_tags is None or chart_path is None:
        print("build first: make toolchain images chart cilium-images", file=sys.stderr)
        return 2
    agent_tag, operator_tag = cilium_tags
    node_key = images.image_key(images.RECIPE_DIR, toolchain.go_version(toolchain.go_command()))
    name = f"csmoke-{secrets.token_hex(3)}"  # its network is cdl-<name> (lab.plan)
    config = parse_config(
        {"mode": "overlay", "clusterName": name, "workers": args.workers, "underlaySubnet": str(subnet)},
        "overlay",
    )
    lab_plan = plan(config)
    work = Path(tempfile.mkdtemp(prefix="cdl-cilium-smoke-"))
    kubectl = [
        str(images.images_root(env) / node_key / "bin" / "kubectl"),
        "--kubeconfig",
        str(work / "kubeconfig"),
    ]
    smoke = Smoke(name, lab_plan.network_name, work, str(key_dir / "bin" / "kind"), kubectl, env)
    result = 1
    try:
        smoke.create(node_tag, args.workers, lab_plan)
        smoke.load(agent_tag, operator_tag)
        values = cilium._deep_merge(
            cilium.helm_values(config, lab_plan), offline_values(agent_tag, operator_tag)
        )
        smoke.install(key_dir, chart_path, values, args.timeout)
        if smoke.wait_ready(args.timeout):
            smoke.say(f"Cilium Ready {smoke.timings['ready']:.0f}s after the install; cilium-dbg status:")
            healthy = smoke.status(args.timeout)
            smoke.say(
                "cilium-health reaches every node" if healthy else "cilium-health did not reach every node"
            )
            dns = smoke.coredns_ready(args.timeout) and smoke.lookup(
                agent_tag, f"{name}-worker" if args.workers else f"{name}-control-plane", args.timeout
            )
            smoke.say("pod DNS works" if dns else "pod DNS does not work")
            result = 0 if healthy and dns else 1
        else:
            smoke.say(f"not Ready after {args.timeout}s; the agents' own words:")
            _agent_logs(kubectl, env)
        times = ", ".join(f"{k} {v:.0f}s" for k, v in smoke.timings.items())
        smoke.say(f"times: {times}")
    except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as exc:
        smoke.say(f"error: {exc}")
        if (work / "kubeconfig").exists():
            _agent_logs(kubectl, env)
    finally:
        if args.keep:
            smoke.say(f"kept: cluster {name}, network {smoke.network}, kubeconfig {work / 'kubeconfig'}")
        else:
            smoke.teardown()
    return result


if __name__ == "__main__":
    sys.exit(main())
