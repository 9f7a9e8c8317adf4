"""The one switch between the registries' images and the ones a machine built for itself.

A lab runs registry images pinned by digest by default: the stack's `nodeImage`, Cilium's chart
from helm.cilium.io with Cilium's own images, and the netshoot tools image. A machine that
reaches no registry (this project's own machines, its CI) builds stand-ins (supply/), and the
Makefile points `LAB_OFFLINE_SUPPLY` at a JSON manifest naming them. This module reads that
manifest, once, and is the only place the lab swaps images: stack files are never edited, so a
stack file a user writes (another name, subnet, more workers) runs here with the same command.

What changes under the switch, and nothing else:
- a `nodeImage` pinned to a registry is replaced by the built node image (a `local:` or image-ID
  `nodeImage` is the user's own choice and is kept);
- the Cilium chart is the packed one and the agent and operator images the built ones, loaded
  into the nodes and never pulled; the chart's images that are not built here are switched off
  (cilium/values-offline.yaml says which and why);
- the tools image (probe pods and the node sidecars) is the one built from Debian;
- the bgp lab's FRR routers run the FRR image built from Debian's frr package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV = "LAB_OFFLINE_SUPPLY"
FIX = "run `make supply` (it builds what is missing and writes the manifest)"
# Images the engine holds under a tag of this machine's own builds: never a registry host.
_LOCAL_TAG = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
)
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
KEYS = ("nodeImage", "ciliumVersion", "ciliumChart", "ciliumAgent", "ciliumOperator", "tools", "frr")


class OfflineSupplyError(ValueError):
    """The manifest LAB_OFFLINE_SUPPLY names is missing or wrong; the text names the key and the fix."""


@dataclass(frozen=True)
class OfflineSupply:
    """What this machine built, standing in for the registries (all tags are in the local engine)."""

    manifest: str  # the file it was read from, for messages
    node_image: str  # <repository>:<tag> of the kind node image
    cilium_version: str  # the one release the chart and the images are of
    cilium_chart: str  # the packed chart archive (.tgz)
    cilium_agent: str  # <repository>:<tag>
    cilium_operator: str  # <repository>:<tag> of the generic operator
    tools: str  # <repository>:<tag> of the tools image (ip, tcpdump, ping, python3)
    frr: str  # <repository>:<tag> of the bgp lab's FRR router image (Debian's frr)

    def node_images(self) -> tuple[str, ...]:
        """The images kind loads into every node (Cilium's, and the tools image the probe pods and
        bgp's echo server run): nothing in a node is ever pulled here."""
        return (self.cilium_agent, self.cilium_operator, self.tools)


def _names_a_host(image: str) -> bool:
    """Docker reads a first path part with a dot (or `localhost`) as a registry to pull from."""
    first, _, rest = image.partition("/")
    return bool(rest) and ("." in first or first == "localhost")


def parse(data: object, manifest: str) -> OfflineSupply:
    """Validate a manifest's content; every problem names its key and the file."""
    if not isinstance(data, dict):
        raise OfflineSupplyError(f"{manifest}: not a JSON object with keys {', '.join(KEYS)}; {FIX}")
    unknown = sorted(set(data) - set(KEYS))
    missing = [k for k in KEYS if k not in data]
    problems = [f"unknown key {k!r}" for k in unknown] + [f"no {k!r}" for k in missing]
    for k in KEYS:
        value = data.get(k)
        if k in missing:
            continue
        if not isinstance(value, str):
            problems.append(f"{k!r} must be a string, not {type(value).__name__}")
        elif k == "ciliumVersion" and not _VERSION.fullmatch(value):
            problems.append(f"{k!r} {value!r} is not a version X.Y.Z")
        elif k == "ciliumChart" and not (value.startswith("/") and value.endswith(".tgz")):
            problems.append(f"{k!r} {value!r} is not an absolute path to a .tgz chart")
        elif k not in ("ciliumVersion", "ciliumChart") and (
            not _LOCAL_TAG.fullmatch(value) or _names_a_host(value)
        ):
            problems.append(f"{k!r} {value!r} is not a local <repository>:<tag>")
        elif k == "ciliumOperator" and not value.rsplit(":", 1)[0].endswith("-generic"):
            # The chart names the operator image <operator.image.repository>-generic:<tag>.
            problems.append(f"{k!r} {value!r} is not named <repository>-generic:<tag>")
    if problems:
        raise OfflineSupplyError(f"{manifest} ({ENV}): {'; '.join(problems)}; {FIX}")
    return OfflineSupply(
        manifest=manifest,
        node_image=data["nodeImage"],
        cilium_version=data["ciliumVersion"],
        cilium_chart=data["ciliumChart"],
        cilium_agent=data["ciliumAgent"],
        cilium_operator=data["ciliumOperator"],
        tools=data["tools"],
        frr=data["frr"],
    )


def load(env: Mapping[str, str]) -> OfflineSupply | None:
    """The manifest named by LAB_OFFLINE_SUPPLY, or None when the switch is off (unset or empty)."""
    path = env.get(ENV, "")
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise OfflineSupplyError(f"{ENV}={path}: no such file; {FIX}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OfflineSupplyError(f"{ENV}={path}: cannot read it ({exc}); {FIX}") from None
    return parse(data, path)


def helm_overrides(supply: OfflineSupply) -> dict[str, Any]:
    """Helm values naming the built images (never pulled: kind loads them into every node)."""
    agent_repo, agent_tag = supply.cilium_agent.rsplit(":", 1)
    operator_repo, operator_tag = supply.cilium_operator.rsplit(":", 1)
    # The chart appends `-generic` to operator.image.repository for the generic operator.
    operator_repo = operator_repo.removesuffix("-generic")
    return {
        "image": {"repository": agent_repo, "tag": agent_tag},
        "operator": {"image": {"repository": operator_repo, "tag": operator_tag}},
    }
