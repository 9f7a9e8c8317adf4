"""The shell scripts pulumi-command runs, executed for real against fake `kind` and `docker`.

The fakes log every call and answer from files, so these tests show what the scripts would do
to a Docker host: idempotent deletes, refusing to adopt a foreign cluster, never rewriting an
immutable podCIDR, and never executing text that arrives in a value.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.scripts import INTERPRETER, SCRIPTS, script

FAKE_KIND = """#!/bin/bash
echo "kind $*" >> "$FAKE_LOG"
case "$1 $2" in
  "get clusters") cat "$FAKE_STATE/clusters" 2>/dev/null || true ;;
  "create cluster") cat > "$FAKE_STATE/kind-config.yaml"; echo "$KIND_EXPERIMENTAL_DOCKER_NETWORK" > "$FAKE_STATE/network"; echo "$4" >> "$FAKE_STATE/clusters" ;;
  "delete cluster") : > "$FAKE_STATE/clusters" ;;
  "get kubeconfig") echo "apiVersion: v1" ;;
esac
"""

FAKE_DOCKER = """#!/bin/bash
echo "docker $*" >> "$FAKE_LOG"
# docker image inspect -- <ref>: present when listed in $FAKE_STATE/images
if [ "$1 $2" = "image inspect" ]; then
  grep -qxF -- "$4" "$FAKE_STATE/images" 2>/dev/null
  exit
fi
# docker exec -- <container> kubectl --kubeconfig F get node N -o jsonpath=... | patch node N ...
if [ "$1" = exec ]; then
  shift 2; shift 4
  verb=$1; node=$3
  case "$verb" in
    get) cat "$FAKE_STATE/podcidr-$node" 2>/dev/null || true ;;
    patch) echo "$7" > "$FAKE_STATE/patched-$node" ;;
  esac
fi
"""


@pytest.fixture
def fakes(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("kind", FAKE_KIND), ("docker", FAKE_DOCKER)):
        exe = bin_dir / name
        exe.write_text(text)
        exe.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "FAKE_STATE": str(state),
    }


def run(name: str, env: dict[str, str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INTERPRETER, script(name)],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def calls(env: dict[str, str]) -> list[str]:
    log = Path(env["FAKE_LOG"])
    return log.read_text().splitlines() if log.exists() else []


def test_create_uses_the_lab_network_and_a_lab_kubeconfig(fakes: dict[str, str], tmp_path: Path) -> None:
    env = {
        **fakes,
        "LAB_CLUSTER": "lab-overlay",
        "LAB_NETWORK": "cdl-lab-overlay",
        "LAB_KUBECONFIG": "artifacts/overlay/kubeconfig",
    }
    result = run("kind/create", env, tmp_path, stdin="kind: Cluster\n")
    assert result.returncode == 0, result.stderr
    assert (
        "kind create cluster --name lab-overlay --config - --kubeconfig artifacts/overlay/kubeconfig --wait 0s"
        in calls(env)
    )
    state = Path(fakes["FAKE_STATE"])
    assert (state / "network").read_text().strip() == "cdl-lab-overlay"
    assert (state / "kind-config.yaml").read_text() == "kind: Cluster\n"
    assert (tmp_path / "artifacts" / "overlay").is_dir()


@pytest.mark.parametrize("present", [True, False])
def test_create_checks_a_local_node_image_before_kind(
    fakes: dict[str, str], tmp_path: Path, present: bool
) -> None:
    ref = "cdl/kind-node:v1.36.1-abc"
    Path(fakes["FAKE_STATE"], "images").write_text(f"{ref}\n" if present else "other:1\n")
    env = {**fakes, "LAB_CLUSTER": "lab", "LAB_NETWORK": "n", "LAB_KUBECONFIG": "k", "LAB_LOCAL_IMAGE": ref}
    result = run("kind/create", env, tmp_path, stdin="kind: Cluster\n")
    assert f"docker image inspect -- {ref}" in calls(env)
    created = any(c.startswith("kind create") for c in calls(env))
    if present:
        assert result.returncode == 0 and created, result.stderr
    else:
        assert result.returncode == 1 and not created
        assert (
            f"the node image {ref} (cilium-datapath-lab:nodeImage) is not in the Docker engine"
            in result.stderr
        )
        assert "fix: make images" in result.stderr


def test_create_asks_nothing_of_the_engine_for_a_registry_image(
    fakes: dict[str, str], tmp_path: Path
) -> None:
    env = {**fakes, "LAB_CLUSTER": "lab", "LAB_NETWORK": "n", "LAB_KUBECONFIG": "k"}
    assert run("kind/create", env, tmp_path, stdin="kind: Cluster\n").returncode == 0
    assert not any(c.startswith("docker image") for c in calls(env))


def test_create_refuses_to_adopt_an_existing_cluster(fakes: dict[str, str], tmp_path: Path) -> None:
    Path(fakes["FAKE_STATE"], "clusters").write_text("lab-overlay\n")
    env = {**fakes, "LAB_CLUSTER": "lab-overlay", "LAB_NETWORK": "n", "LAB_KUBECONFIG": "k"}
    result = run("kind/create", env, tmp_path)
    assert result.returncode == 1
    assert "fix: kind delete cluster --name lab-overlay" in result.stderr
    assert not any(c.startswith("kind create") for c in calls(env))


def test_delete_is_idempotent(fakes: dict[str, str], tmp_path: Path) -> None:
    Path(fakes["FAKE_STATE"], "clusters").write_text("lab-static\nother\n")
    kubeconfig = tmp_path / "artifacts" / "static" / "kubeconfig"
    kubeconfig.parent.mkdir(parents=True)
    kubeconfig.write_text("secret")
    env = {**fakes, "LAB_CLUSTER": "lab-static", "LAB_KUBECONFIG": "artifacts/static/kubeconfig"}
    first = run("kind/delete", env, tmp_path)
    second = run("kind/delete", env, tmp_path)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    deletes = [c for c in calls(env) if c.startswith("kind delete")]
    assert deletes == ["kind delete cluster --name lab-static --kubeconfig artifacts/static/kubeconfig"]
    assert "already gone" in second.stderr
    assert not kubeconfig.exists()


def test_delete_matches_the_cluster_name_exactly(fakes: dict[str, str], tmp_path: Path) -> None:
    """`lab` must not match `lab-static` (grep -x): deleting the wrong cluster would be a disaster."""
    Path(fakes["FAKE_STATE"], "clusters").write_text("lab-static\n")
    env = {**fakes, "LAB_CLUSTER": "lab", "LAB_KUBECONFIG": "k"}
    assert run("kind/delete", env, tmp_path).returncode == 0
    assert not any(c.startswith("kind delete") for c in calls(env))


def test_pod_cidrs_are_written_once_and_never_rewritten(fakes: dict[str, str], tmp_path: Path) -> None:
    state = Path(fakes["FAKE_STATE"])
    state.joinpath("podcidr-lab-worker").write_text("10.10.0.32/27")  # already right
    env = {
        **fakes,
        "LAB_CONTROL_PLANE": "lab-control-plane",
        "LAB_POD_CIDRS": "lab-control-plane=10.10.0.0/27 lab-worker=10.10.0.32/27",
    }
    result = run("kind/pod-cidrs", env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert state.joinpath("patched-lab-control-plane").read_text().strip() == (
        '{"spec":{"podCIDR":"10.10.0.0/27","podCIDRs":["10.10.0.0/27"]}}'
    )
    assert not state.joinpath("patched-lab-worker").exists()

    state.joinpath("podcidr-lab-worker").write_text("10.10.0.96/27")  # someone else's plan
    result = run("kind/pod-cidrs", env, tmp_path)
    assert result.returncode == 1
    assert "immutable" in result.stderr and "fix:" in result.stderr


def test_values_are_data_not_code(fakes: dict[str, str], tmp_path: Path) -> None:
    """A hostile value reaching a script through the environment is never executed."""
    marker = tmp_path / "pwned"
    env = {**fakes, "LAB_CLUSTER": f"x$(touch {marker})", "LAB_KUBECONFIG": f"k; touch {marker}"}
    run("kind/delete", env, tmp_path)
    run("kind/kubeconfig", env, tmp_path)
    assert not marker.exists()


def test_control_plane_joins_the_ecmp_set_idempotently(fakes: dict[str, str], tmp_path: Path) -> None:
    """The exclude-from-external-load-balancers label is removed once; a second run only says so."""
    bin_dir = Path(fakes["PATH"].split(":")[0])
    state = Path(fakes["FAKE_STATE"])
    (bin_dir / "docker").write_text(
        "#!/bin/bash\n"
        'echo "docker $*" >> "$FAKE_LOG"\n'
        'if [[ "$*" == *"--show-labels"* ]]; then cat "$FAKE_STATE/labels" 2>/dev/null; fi\n'
        'if [[ "$*" == *" label node "* ]]; then : > "$FAKE_STATE/labels"; fi\n'
    )
    state.joinpath("labels").write_text(
        "lab-bgp-control-plane Ready control-plane 1m v1.36.1 node.kubernetes.io/exclude-from-external-load-balancers=\n"
    )
    env = {**fakes, "LAB_CONTROL_PLANE": "lab-bgp-control-plane"}
    for _ in range(2):
        assert run("bgp/include-control-plane", env, tmp_path).returncode == 0
    removals = [c for c in calls(env) if " label node " in f" {c} "]
    assert removals == [
        "docker exec -- lab-bgp-control-plane kubectl --kubeconfig /etc/kubernetes/admin.conf label node "
        "lab-bgp-control-plane node.kubernetes.io/exclude-from-external-load-balancers-"
    ]


def test_control_plane_label_is_found_in_long_output_under_pipefail(
    fakes: dict[str, str], tmp_path: Path
) -> None:
    """The label on the first of many lines: `kubectl | grep -q` would stop reading, kubectl
    would die of SIGPIPE, pipefail would turn the match into the "does not carry" branch."""
    bin_dir = Path(fakes["PATH"].split(":")[0])
    state = Path(fakes["FAKE_STATE"])
    (bin_dir / "docker").write_text(
        "#!/bin/bash\n"
        'echo "docker $*" >> "$FAKE_LOG"\n'
        'if [[ "$*" == *"--show-labels"* ]]; then cat "$FAKE_STATE/labels"; fi\n'
    )
    filler = "x" * 1023 + "\n"
    state.joinpath("labels").write_text(
        "lab-bgp-control-plane Ready node.kubernetes.io/exclude-from-external-load-balancers=\n"
        + filler * 4096  # 4 MiB, far beyond a pipe's buffer
    )
    env = {**fakes, "LAB_CONTROL_PLANE": "lab-bgp-control-plane"}
    result = run("bgp/include-control-plane", env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "does not carry" not in result.stderr
    assert any(" label node " in f" {c} " for c in calls(env))


def test_a_kubectl_that_fails_is_an_error_not_a_missing_label(fakes: dict[str, str], tmp_path: Path) -> None:
    """With the output captured first, a failing `kubectl get` stops the script (set -e)."""
    bin_dir = Path(fakes["PATH"].split(":")[0])
    (bin_dir / "docker").write_text('#!/bin/bash\necho "docker $*" >> "$FAKE_LOG"\necho boom >&2\nexit 1\n')
    env = {**fakes, "LAB_CONTROL_PLANE": "lab-bgp-control-plane"}
    result = run("bgp/include-control-plane", env, tmp_path)
    assert result.returncode != 0 and "does not carry" not in result.stderr


def test_a_kept_route_in_a_long_route_list_is_not_removed(fakes: dict[str, str], tmp_path: Path) -> None:
    """apply.sh matches each previously installed route against the declared list: the match
    must not depend on the writer of the list surviving grep -q stopping early. The list must
    fit in one environment variable (128 KiB), which a pipe and grep's first read can swallow
    whole, so a grep that stops after the first line stands in for a small pipe buffer."""
    real_grep = shutil.which("grep")
    assert real_grep
    grep = Path(fakes["PATH"].split(":")[0]) / "grep"
    grep.write_text(f'#!/bin/bash\nIFS= read -r first\nexec {real_grep} "$@" <<< "$first"\n')
    grep.chmod(0o755)
    route = "10.{}.{}.0/24 via 172.30.4.3 dev eth0 proto static metric 100 onlink"
    routes = [route.format(i // 250, i % 250) for i in range(1100)]  # > 64 KiB, a pipe buffer
    env = {
        **fakes,
        "LAB_NODE": "lab-static-worker",
        "LAB_ROUTES": "\n".join(routes),
        "PULUMI_COMMAND_STDOUT": routes[0],
    }
    result = run("routes/apply", env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert not any(" route del " in f" {c} " for c in calls(env))


def test_every_shellcheck_exception_says_why() -> None:
    """`make lint` runs shellcheck over scripts/; a finding is fixed or its disable explains itself."""
    directives = [
        (path.name, line.strip())
        for path in sorted(SCRIPTS.rglob("*.sh"))
        for line in path.read_text().splitlines()
        if line.strip().startswith("# shellcheck disable=")
    ]
    unexplained = [d for d in directives if not re.fullmatch(r"# shellcheck disable=\S+ # \S.{9,}", d[1])]
    assert not unexplained, unexplained


LOAD_FAKE_DOCKER = """#!/bin/bash
echo "docker $*" >> "$FAKE_LOG"
# docker image inspect --format {{.Id}} -- <ref>: the ID listed for <ref> in $FAKE_STATE/ids
if [ "$1 $2" = "image inspect" ]; then
  awk -v ref="$6" '$1 == ref { print $2; found = 1 } END { exit !found }' "$FAKE_STATE/ids"
  exit
fi
# docker exec <node> ctr --namespace k8s.io images ls --quiet: what $FAKE_STATE/refs-<node> lists
if [ "$1" = exec ]; then cat "$FAKE_STATE/refs-$2"; fi
"""

LOAD_FAKE_KIND = """#!/bin/bash
echo "kind $*" >> "$FAKE_LOG"
if [ "$1 $2" = "get nodes" ]; then cat "$FAKE_STATE/nodes"; fi
"""

LOAD_IMAGES = {
    "cdl/cilium:1.20.2-k": "sha256:aa",
    "cdl/operator-generic:1.20.2-k": "sha256:bb",
    "tools:k": "sha256:cc",
}
NODES = ("lab-control-plane", "lab-worker", "lab-worker2")


def _holding(images: dict[str, str]) -> str:
    """`ctr images ls -q` of a node holding these images: containerd's names and CRI's ID refs."""
    names = [f"docker.io/{i}" if "/" in i else f"docker.io/library/{i}" for i in images]
    return "".join(f"{r}\n" for r in ["registry.k8s.io/pause:3.10.2", *names, *images.values()])


def _load(
    tmp_path: Path, held: dict[str, dict[str, str]], engine: dict[str, str] = LOAD_IMAGES
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    for folder in (bin_dir, state):
        folder.mkdir()
    for name, text in (("kind", LOAD_FAKE_KIND), ("docker", LOAD_FAKE_DOCKER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (state / "ids").write_text("".join(f"{ref} {id_}\n" for ref, id_ in engine.items()))
    (state / "nodes").write_text("".join(f"{n}\n" for n in held))
    for node, images in held.items():
        (state / f"refs-{node}").write_text(_holding(images))
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "FAKE_STATE": str(state),
        "LAB_CLUSTER": "lab",
        "LAB_IMAGES": " ".join(LOAD_IMAGES),
    }
    result = run("kind/load-images", env, tmp_path)
    return result, [c for c in calls(env) if c.startswith("kind load")]


def test_load_images_loads_nothing_when_every_node_holds_every_image(tmp_path: Path) -> None:
    """The preloaded node image's case: each node lists each image by name and by ID."""
    result, loaded = _load(tmp_path, {n: LOAD_IMAGES for n in NODES})
    assert result.returncode == 0, result.stderr
    assert loaded == []
    assert "every node of lab already holds" in result.stderr and "nothing to load" in result.stderr


def test_load_images_loads_only_what_a_node_lacks_into_only_that_node(tmp_path: Path) -> None:
    lacking = {k: v for k, v in LOAD_IMAGES.items() if k != "tools:k"}
    result, loaded = _load(tmp_path, {NODES[0]: LOAD_IMAGES, NODES[1]: lacking, NODES[2]: LOAD_IMAGES})
    assert result.returncode == 0, result.stderr
    assert loaded == ["kind load docker-image --name lab --nodes lab-worker -- tools:k"]
    assert "loaded into 1 node(s) of lab" in result.stderr


def test_load_images_reloads_an_image_a_node_holds_under_another_id(tmp_path: Path) -> None:
    """Same name, other content (an older build under the same tag): the name alone does not count."""
    stale = {**LOAD_IMAGES, "cdl/cilium:1.20.2-k": "sha256:old"}
    result, loaded = _load(tmp_path, {NODES[0]: stale, NODES[1]: LOAD_IMAGES})
    assert result.returncode == 0, result.stderr
    assert loaded == ["kind load docker-image --name lab --nodes lab-control-plane -- cdl/cilium:1.20.2-k"]


def test_load_images_takes_the_union_of_what_the_nodes_lack(tmp_path: Path) -> None:
    no_cilium = {k: v for k, v in LOAD_IMAGES.items() if k != "cdl/cilium:1.20.2-k"}
    no_operator = {k: v for k, v in LOAD_IMAGES.items() if k != "cdl/operator-generic:1.20.2-k"}
    result, loaded = _load(tmp_path, {NODES[0]: no_cilium, NODES[1]: LOAD_IMAGES, NODES[2]: no_operator})
    assert result.returncode == 0, result.stderr
    assert loaded == [
        "kind load docker-image --name lab --nodes lab-control-plane,lab-worker2 -- "
        "cdl/cilium:1.20.2-k cdl/operator-generic:1.20.2-k"
    ]


def test_load_images_refuses_an_image_the_engine_lacks(tmp_path: Path) -> None:
    engine = {k: v for k, v in LOAD_IMAGES.items() if k != "cdl/operator-generic:1.20.2-k"}
    result, loaded = _load(tmp_path, {n: {} for n in NODES}, engine)
    assert result.returncode == 1 and loaded == []
    assert "the image cdl/operator-generic:1.20.2-k is not in the Docker engine" in result.stderr
    assert "fix: make supply" in result.stderr


def test_load_images_refuses_a_cluster_without_nodes(tmp_path: Path) -> None:
    result, loaded = _load(tmp_path, {})
    assert result.returncode == 1 and loaded == []
    assert "the kind cluster lab has no nodes" in result.stderr
