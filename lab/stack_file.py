"""A stack's config read straight from its stack file, for tools that run outside `pulumi up`.

The sweep, the preflight and `python -m verify run --stack` need the same validated LabConfig the
program builds, without a Pulumi engine: they read `stacks/Pulumi.<stack>.yaml` and parse its keys
of the project's namespace with the same rules.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lab.config import PROJECT, LabConfig, parse_config

STACKS_DIR = Path(__file__).resolve().parent.parent / "stacks"


def stack_config(stack: str, stacks_dir: Path = STACKS_DIR) -> LabConfig:
    """The stack's validated config, read from its stack file (outside a Pulumi run)."""
    raw = yaml.safe_load((stacks_dir / f"Pulumi.{stack}.yaml").read_text())["config"]
    prefix = f"{PROJECT}:"
    return parse_config({k[len(prefix) :]: v for k, v in raw.items() if k.startswith(prefix)}, stack)
