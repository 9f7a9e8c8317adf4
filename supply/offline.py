"""The offline supply as one piece: does this machine need it, build what is missing, and write the
manifest the lab's one switch reads (LAB_OFFLINE_SUPPLY, lab/offline.py).

    python -m supply.offline detect     prints `offline` (exit 0) or `online` (exit 1)
    python -m supply.offline build      builds every missing piece, saying which, then the manifest
    python -m supply.offline manifest   writes the manifest of what is built and prints its path

A machine needs the supply when it can resolve none of the hosts a lab downloads from (Cilium's
and kind's image registries, Pulumi's plugin downloads): then nothing can be pulled or
downloaded, and only what is built here runs. On a user's host those names resolve, and the lab
takes the normal path. `LAB_SUPPLY=offline|online` in the Makefile overrides the detection.
Only the standard library: it runs before a venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from supply import chart, cilium_images, frr_image, node_image, preloaded_node, toolchain, tools_image
from supply.toolchain import ToolchainError

# Where the lab's images and plugins come from on a host with internet.
DOWNLOAD_HOSTS = ("quay.io", "registry-1.docker.io", "get.pulumi.com")
Resolver = Callable[[str, int], object]


def needs_offline_supply(resolve: Resolver = socket.getaddrinfo) -> bool:
    """True when no download host resolves: nothing can be pulled, so the lab runs what is built here."""
    for host in DOWNLOAD_HOSTS:
        try:
            resolve(host, 443)
        except (OSError, UnicodeError):
            continue
        return False
    return True


@dataclass(frozen=True)
class Piece:
    """One part of the supply: its make target, how to find it built, how to build it, and the lane
    it is built in (pieces of one lane one after another, the lanes side by side). A piece made of
    what several lanes build has no lane (None): it is built after every lane has ended."""

    name: str
    target: str
    current: Callable[[Mapping[str, str]], object | None]
    build: Callable[[], object]
    lane: int | None = 0


def pieces() -> tuple[Piece, ...]:
    """Two lanes of about the same length on a cold machine. Every build waits on downloads (Go
    modules, Debian packages) and on single-threaded links part of its time; a second lane fills
    those waits, which on 2 cores takes a cold `make supply` well under the sum of its pieces."""
    return (
        Piece("the Pulumi toolchain and plugins", "toolchain", toolchain.current_dir, toolchain.build, 0),
        Piece("the kind node image", "images", node_image.current_tag, node_image.build, 1),
        Piece("the Cilium chart", "chart", chart.current_path, chart.build, 1),
        Piece(
            "Cilium's agent and operator images",
            "cilium-images",
            cilium_images.current_tags,
            cilium_images.build,
            1,
        ),
        Piece("the tools image", "tools-image", tools_image.current_tag, tools_image.build, 0),
        Piece("the FRR router image", "frr-image", frr_image.current_tag, frr_image.build, 0),
        Piece(
            "the node image with the lab's images preloaded",
            "preloaded-node-image",
            preloaded_node.current_tag,
            preloaded_node.build,
            None,
        ),
    )


def _say(message: str) -> None:
    print(f"[supply] {message}", flush=True)


def build_missing(env: Mapping[str, str], parts: Sequence[Piece] | None = None) -> list[str]:
    """Build every piece the caches lack, saying so; the names of those built, in the pieces' order.

    Each lane builds its pieces in order while the lanes run side by side. When a piece fails,
    that is said at once, no lane starts another piece, and the first failure is raised once the
    pieces already running have ended (each build keeps its work in a scratch folder until it is
    whole, so nothing half-built is left under a key)."""
    parts = pieces() if parts is None else parts
    missing = [p for p in parts if p.current(env) is None]
    if not missing:
        _say("every piece of the offline supply is built (cached)")
        return []
    lanes: dict[int, list[Piece]] = {}
    for piece in missing:
        if piece.lane is not None:
            lanes.setdefault(piece.lane, []).append(piece)
    joins = [p for p in missing if p.lane is None]
    _say(
        "this machine reaches no registry: building what the lab needs first, cached afterwards: "
        + ", ".join(p.name for p in missing)
        + (f" ({len(lanes)} at a time)" if len(lanes) > 1 else "")
    )
    numbers = {id(p): i for i, p in enumerate(missing, 1)}
    failures: list[Exception] = []
    stop = threading.Event()

    def run_lane(lane: list[Piece]) -> None:
        for piece in lane:
            if stop.is_set():
                return
            label = f"[{numbers[id(piece)]}/{len(missing)}] {piece.name}"
            started = time.monotonic()
            _say(f"{label} (make {piece.target}) ...")
            try:
                piece.build()
            except Exception as exc:  # handed to the caller once the other lanes stop
                _say(f"{label} failed after {time.monotonic() - started:.0f}s: {exc}")
                failures.append(exc)
                stop.set()
                return
            _say(f"{label} done in {time.monotonic() - started:.0f}s")

    threads = [threading.Thread(target=run_lane, args=(lane,), daemon=True) for lane in lanes.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run_lane(joins)
    if failures:
        raise failures[0]
    return [p.name for p in missing]


def manifest_data(env: Mapping[str, str]) -> dict[str, str]:
    """What lab/offline.py reads; raises naming the make target of every piece not built. The node
    image is the one with the lab's images preloaded (supply/preloaded_node.py)."""
    node = preloaded_node.current_tag(env)
    chart_path = chart.current_path(env)
    cilium_tags = cilium_images.current_tags(env)
    tools = tools_image.current_tag(env)
    frr = frr_image.current_tag(env)
    missing = [
        target
        for target, found in (
            ("preloaded-node-image", node),
            ("chart", chart_path),
            ("cilium-images", cilium_tags),
            ("tools-image", tools),
            ("frr-image", frr),
        )
        if found is None
    ]
    if missing or node is None or chart_path is None or cilium_tags is None or tools is None or frr is None:
        raise ToolchainError(
            f"not built yet: {', '.join(missing)}; run `make supply` (or make {' '.join(missing)})"
        )
    return {
        "nodeImage": node,
        "ciliumVersion": cilium_images.load_recipe().version,
        "ciliumChart": str(chart_path),
        "ciliumAgent": cilium_tags[0],
        "ciliumOperator": cilium_tags[1],
        "tools": tools,
        "frr": frr,
    }


def write_manifest(env: Mapping[str, str]) -> Path:
    """The manifest file, named by its content: the same supply gives the same path."""
    text = json.dumps(manifest_data(env), indent=2, sort_keys=True) + "\n"
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".cache")
    folder = Path(base) / "cilium-datapath-lab" / "offline"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"manifest-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.rename(path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supply.offline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "detect", help="print offline (exit 0) when no download host resolves, else online (exit 1)"
    )
    sub.add_parser("build", help="build every missing piece of the supply, then print the manifest's path")
    sub.add_parser("manifest", help="write the manifest of the built supply and print its path")
    args = parser.parse_args(argv)
    if args.command == "detect":
        offline = needs_offline_supply()
        print("offline" if offline else "online")
        return 0 if offline else 1
    try:
        if args.command == "build":
            build_missing(os.environ)
        print(write_manifest(os.environ))
        return 0
    except (ToolchainError, subprocess.SubprocessError, OSError) as exc:
        print(f"[supply] error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
