"""The discipline every cached build of this project follows (toolchain, node image, ...).

A build is keyed by what determines its output (supply/toolchain.py's and supply/node_image.py's keys), runs
in a temporary directory beside its final place, and is renamed into place with its stamp written
last, so only a directory holding a stamp counts as built: a killed build never leaves a half
result that a later run would trust. One lock per cache root keeps two builds from racing.
Only the standard library: it runs before the project's venv exists.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

STAMP = "stamp.json"


def recipe_key(recipe_dir: Path, script: Path, extra: str) -> str:
    """Hash of every recipe file (path and content), the build script, this module and `extra`."""
    h = hashlib.sha256()
    files = sorted(p for p in recipe_dir.rglob("*") if p.is_file())
    for path in [*files, script, Path(__file__).resolve()]:
        label = path.relative_to(recipe_dir).as_posix() if path.is_relative_to(recipe_dir) else path.name
        data = path.read_bytes()
        h.update(f"{label}\0{len(data)}\0".encode())
        h.update(data)
    h.update(extra.encode())
    return h.hexdigest()[:16]


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the cache root's lock: one build (or import) at a time per root."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def built_dir(root: Path, key: str) -> Path | None:
    """The finished build of this key, or None: only a directory with its stamp counts."""
    key_dir = root / key
    return key_dir if (key_dir / STAMP).is_file() else None


def start(root: Path, key: str) -> Path:
    """A fresh temporary build directory under `root`; call with the lock held.

    Directories of killed builds are removed first: the lock says none of them is running."""
    for stale in root.glob(".build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=root))


def finish(tmp: Path, root: Path, key: str, stamp: Mapping[str, object]) -> Path:
    """Stamp the build in `tmp` and rename it to `root/key`; return that final directory."""
    (tmp / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    tmp.chmod(0o755)  # mkdtemp made it private; the result is for every user
    final = root / key
    if final.exists():  # a directory without a stamp is not a build
        shutil.rmtree(final)
    tmp.rename(final)
    return final
