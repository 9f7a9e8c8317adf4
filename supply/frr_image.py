"""Build the FRR router image of the bgp lab on a machine with no registry, cached by a key.

`make frr-image` runs `python -m supply.frr_image build`. The image stands in for the pinned
upstream FRR image (components/frr_router.py): Debian's frr and tini, with a start script of the
recipe's own at the upstream path, as supply/images/frr/recipe.toml says with why
(supply/debian_image.py builds and caches it). The router container gives its own entrypoint and
command, so the image sets none. Only the standard library: it runs before a venv.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from supply.debian_image import DebianImage

RECIPE_DIR = Path(__file__).resolve().parent / "images" / "frr"
FRR = DebianImage(
    name="FRR router image",
    target="frr-image",
    recipe_dir=RECIPE_DIR,
    module=Path(__file__).resolve(),
    folder="frr",
    changes=(),
)


def current_tag(env: Mapping[str, str]) -> str | None:
    return FRR.current_tag(env)


def build(env: Mapping[str, str] | None = None) -> str:
    return FRR.build(env)


if __name__ == "__main__":
    sys.exit(FRR.main())
