"""Where Docker put the lab's nodes: read from `docker network inspect`, not guessed."""

from __future__ import annotations

import ipaddress
import json
from typing import Any


def parse_node_ips(inspect_json: str, node_names: list[str], network: str) -> dict[str, str]:
    """Node name -> underlay IP, from `docker network inspect --format '{{json .Containers}}'`."""
    containers: dict[str, dict[str, Any]] = json.loads(inspect_json or "{}") or {}
    found = {
        c["Name"]: str(ipaddress.ip_interface(c["IPv4Address"]).ip)
        for c in containers.values()
        if c.get("IPv4Address")
    }
    missing = [n for n in node_names if n not in found]
    if missing:
        raise ValueError(
            f"kind nodes {', '.join(missing)} are not attached to docker network {network}; "
            f"inspect with: docker network inspect {network}"
        )
    return {n: found[n] for n in node_names}
