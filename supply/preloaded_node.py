"""The kind node image with the lab's own images already in its containerd (`make preloaded-node-image`).

Without it, every `make up` on this machine copied Cilium's agent and operator and the tools image
into each node with `kind load` (docker save, then a stream into every node's `ctr import`): about
1.2 GB per node and 100-150 s of every up on 2 cores. Here that work is done once per set of
images: the node image runs with only containerd started, imports the images' content (not
unpacked; containerd's CRI unpacks an image the first time a container of it starts, on the
node's own /var), and the container is committed as a new image. kind starts every node with an
anonymous /var volume, which Docker fills from the image, so each node boots with the images in
place. This is how kind's own `kind build node-image` preloads its images.

The tag's key is derived from the tags of what goes in (each of which names its own recipe's key),
so the same supply gives the same tag; the engine holding that tag is the cache.
Only the standard library: it runs before the project's venv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from supply import cilium_images, node_image, tools_image
from supply.node_image import NODE_METADATA, engine_image_id, images_root
from supply.toolchain import ToolchainError

REPOSITORY = "cdl/kind-node-preloaded"
NAMESPACE = "k8s.io"  # containerd's namespace for the kubelet's images (CRI)
PID_FILE = "/run/cdl-preload-containerd.pid"  # inside the build container (a tmpfs)
SAVED = "/run/preload/images.tar"  # the saved images, read only, on the build container's tmpfs
# The only paths the build may change: containerd's store and the folders that hold it, and the
# empty folders containerd makes when it starts (its opt plugin's, and CRI's CNI config folder),
# which every node's containerd would make at boot anyway.
ALLOWED_CHANGES = (
    "/var", "/var/lib", "/var/lib/containerd",
    "/opt", "/opt/containerd", "/opt/containerd/bin", "/opt/containerd/lib",
    "/etc", "/etc/cni", "/etc/cni/net.d",
)  # fmt: skip


class PreloadError(ToolchainError):
    """The preloaded node image could not be built; the message says which step and why."""


@dataclass(frozen=True)
class PreloadInputs:
    """What goes into the preloaded node image: the node image and the images to put in it."""

    node: str
    images: tuple[str, ...]

    def key(self) -> str:
        """Names what goes in, and this module (the way it goes in); 16 hex digits."""
        h = hashlib.sha256(Path(__file__).resolve().read_bytes())
        h.update(json.dumps({"node": self.node, "images": list(self.images)}).encode())
        return h.hexdigest()[:16]

    def tag(self) -> str:
        """<repository>:<the node image's Kubernetes version>-<key>."""
        version = self.node.rpartition(":")[2].split("-", 1)[0]
        return f"{REPOSITORY}:{version}-{self.key()}"


def current_inputs(env: Mapping[str, str]) -> PreloadInputs | None:
    """The inputs of the current supply, or None while any of them is not built."""
    node = node_image.current_tag(env)
    cilium = cilium_images.current_tags(env)
    tools = tools_image.current_tag(env)
    if node is None or cilium is None or tools is None:
        return None
    return PreloadInputs(node=node, images=(*cilium, tools))


def current_tag(env: Mapping[str, str]) -> str | None:
    """The preloaded node image's tag if the engine holds it for the current supply."""
    inputs = current_inputs(env)
    if inputs is None:
        return None
    tag = inputs.tag()
    return tag if engine_image_id(tag, env) is not None else None


def containerd_ref(image: str) -> str:
    """How containerd names an image Docker calls `repo:tag` (no registry host: Docker Hub's)."""
    first = image.partition("/")[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if "/" in image else f"docker.io/library/{image}"


def run_argv(name: str, node: str, scratch: Path) -> list[str]:
    """The build container: the node image with `sleep` in place of systemd, /run and /tmp in memory
    so nothing of containerd's run state is kept, and the saved images read only under /run."""
    return [
        "docker", "run", "--detach", "--privileged", "--name", name,
        "--tmpfs", "/run", "--tmpfs", "/tmp",  # noqa: S108 - the container's own /tmp, in memory
        "--volume", f"{scratch}:{Path(SAVED).parent}:ro",
        "--entrypoint", "sleep", node, "infinity",
    ]  # fmt: skip


def import_argv(name: str) -> list[str]:
    return [
        "docker", "exec", name, "ctr", "--namespace", NAMESPACE,
        "images", "import", "--all-platforms", "--no-unpack", SAVED,
    ]  # fmt: skip


# The run replaced the node image's entrypoint (and set `infinity` as its command); the commit puts
# the entrypoint back, which also clears the command. The rest of the node image's metadata (its
# ENV, STOPSIGNAL) the container kept from the image; `docker commit` refuses STOPSIGNAL changes.
ENTRYPOINT = next(line for line in NODE_METADATA if line.startswith("ENTRYPOINT "))
# What `docker inspect` must show the same for the node image and the preloaded one.
METADATA_FORMAT = (
    "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.StopSignal}} {{json .Config.Env}}"
)


def commit_argv(name: str, tag: str) -> list[str]:
    return ["docker", "commit", "--change", ENTRYPOINT, name, tag]


def missing_refs(listed: str, images: Sequence[str], ids: Mapping[str, str]) -> list[str]:
    """The images `ctr images ls -q` does not show both by name and by the engine's image ID (the
    config digest, which containerd's CRI lists as `sha256:...`): an import that kept only one of
    them left the image unusable or stale."""
    refs = set(listed.split())
    return [
        image for image in images if containerd_ref(image) not in refs or f"sha256:{ids[image]}" not in refs
    ]


def stray_changes(diff: str) -> list[str]:
    """The paths `docker diff` shows outside containerd's store: anything else in the image would be
    the build's leftovers in every node."""
    stray = []
    for line in diff.splitlines():
        path = line.partition(" ")[2].strip()
        if path and path not in ALLOWED_CHANGES and not path.startswith("/var/lib/containerd/"):
            stray.append(line.strip())
    return stray


def _say(message: str) -> None:
    print(f"[preloaded-node] {message}", flush=True)


def _run(argv: Sequence[str], env: Mapping[str, str], what: str) -> str:
    proc = subprocess.run(list(argv), env=dict(env), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise PreloadError(f"{what} failed (exit {proc.returncode}): {detail}")
    return proc.stdout


def _wait_for_containerd(name: str, env: Mapping[str, str], attempts: int = 150) -> None:
    """Poll containerd's socket until it answers (bounded; no fixed wait)."""
    for _ in range(attempts):
        probe = subprocess.run(
            ["docker", "exec", name, "ctr", "version"], env=dict(env), capture_output=True, check=False
        )
        if probe.returncode == 0:
            return
        time.sleep(0.2)
    raise PreloadError(
        f"containerd in the build container {name} did not answer within {attempts * 0.2:.0f}s"
    )


def _stop_containerd(name: str, env: Mapping[str, str]) -> None:
    """Stop the containerd this build started (by its PID) and wait for it, so its database is closed."""
    _run(
        [
            "docker", "exec", name, "bash", "-c",
            f'pid=$(cat {PID_FILE}); kill -TERM "$pid"; '
            'for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done; exit 1',
        ],
        env,
        "stopping containerd in the build container",
    )  # fmt: skip


def build(env: Mapping[str, str] | None = None) -> str:
    """Build the preloaded node image for the current supply unless the engine holds it; its tag."""
    env = dict(os.environ if env is None else env)
    inputs = current_inputs(env)
    if inputs is None:
        raise PreloadError(
            "the node image, Cilium's images and the tools image must be built first: "
            "make images cilium-images tools-image"
        )
    tag = inputs.tag()
    if engine_image_id(tag, env) is not None:
        _say(f"{tag} is already built")
        return tag
    ids = {}
    for image in (inputs.node, *inputs.images):
        found = engine_image_id(image, env)
        if found is None:
            raise PreloadError(f"the engine has no {image}; run `make supply` to build and import it")
        ids[image] = found
    started = time.monotonic()
    root = images_root(env).parent / "preloaded-node"
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    name = f"cdl-preload-{inputs.key()}-{os.getpid()}"
    try:
        _say(f"saving {', '.join(inputs.images)} ...")
        _run(["docker", "save", "--output", str(scratch / "images.tar"), *inputs.images], env, "docker save")
        _run(run_argv(name, inputs.node, scratch), env, "starting the build container")
        _run(
            ["docker", "exec", "--detach", name, "bash", "-c", f"echo $$ > {PID_FILE}; exec containerd"],
            env,
            "starting containerd in the build container",
        )
        _wait_for_containerd(name, env)
        _say(f"importing into the node image's containerd ({NAMESPACE}) ...")
        _run(import_argv(name), env, "ctr images import")
        listed = _run(
            ["docker", "exec", name, "ctr", "--namespace", NAMESPACE, "images", "ls", "--quiet"],
            env,
            "ctr images ls",
        )
        missing = missing_refs(listed, inputs.images, ids)
        if missing:
            raise PreloadError(
                f"after the import, containerd does not list {', '.join(missing)} with its image ID"
            )
        _stop_containerd(name, env)
        stray = stray_changes(_run(["docker", "diff", name], env, "docker diff"))
        if stray:
            raise PreloadError("the build changed more than containerd's store: " + "; ".join(stray[:10]))
        _run(commit_argv(name, tag), env, "docker commit")
        want, got = (
            _run(["docker", "inspect", "--format", METADATA_FORMAT, ref], env, "docker inspect")
            for ref in (inputs.node, tag)
        )
        if got != want:
            _run(["docker", "rmi", tag], env, "removing the wrong image")
            raise PreloadError(
                f"the committed image's metadata {got.strip()} is not the node image's {want.strip()}"
            )
    finally:
        subprocess.run(["docker", "rm", "--force", name], env=env, capture_output=True, check=False)
        shutil.rmtree(scratch, ignore_errors=True)
    _say(
        f"built {tag} in {time.monotonic() - started:.0f}s (every node starts with {', '.join(inputs.images)})"
    )
    return tag


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m supply.preloaded_node", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the preloaded node image unless the engine holds it")
    sub.add_parser("tag", help="print its tag (exit 1 if it is not built)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build()
            return 0
        tag = current_tag(os.environ)
        if tag is None:
            print("the preloaded node image is not built: run `make preloaded-node-image`", file=sys.stderr)
            return 1
        print(tag)
        return 0
    except (ToolchainError, subprocess.SubprocessError, OSError) as exc:
        print(f"[preloaded-node] error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
