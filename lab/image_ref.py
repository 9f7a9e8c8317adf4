"""Image references the lab accepts, each as strict as a digest about which bytes it runs.

A registry image must be pinned by digest (`repository[:tag]@sha256:<64 hex>`), so two hosts pull
the same bytes. An image built on this machine (`make images`) has no registry digest, so it is
named in one of two ways the lab can hold to account just as well:

- its image ID, `sha256:<64 hex>`: the content hash of the image's config, which the engine
  either has or has not. It names one import: `docker import` stamps a creation time, so an
  image re-imported after the engine lost it gets a new ID, and `local:` is the stable form;
- `local:<repository>:<tag>`: a tag in the local engine. A tag alone could be moved, so the
  `local:` prefix says on purpose "never pulled", and the preflight checks that the engine holds
  it (host/preflight.py) before any resource is created.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

LOCAL_PREFIX = "local:"
_NAME = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = rf"{_NAME}(?:/{_NAME})*"  # no registry host: a local tag is never pulled from anywhere
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"
_PINNED = re.compile(rf"^(?:{_HOST}/)?{_REPOSITORY}(?::{_TAG})?@{_DIGEST}$")
_IMAGE_ID = re.compile(rf"^{_DIGEST}$")
_LOCAL_TAG = re.compile(rf"^{_REPOSITORY}:{_TAG}$")


class ImageSource(Enum):
    """Where the engine gets the image from."""

    REGISTRY = "registry"  # pulled by digest when the engine lacks it
    IMAGE_ID = "image ID"  # must already be in the engine
    LOCAL_TAG = "local tag"  # must already be in the engine


@dataclass(frozen=True)
class ImageRef:
    """A validated image reference: `ref` is what kind and docker are given."""

    source: ImageSource
    ref: str

    @property
    def must_be_local(self) -> bool:
        """True when nothing may be pulled: the engine must already hold the image."""
        return self.source is not ImageSource.REGISTRY

    def __str__(self) -> str:
        return self.ref


class ImageRefError(ValueError):
    """A reference that is neither pinned, an image ID, nor a local tag; the text says which forms are."""


def parse_image_ref(raw: str, example: str) -> ImageRef:
    """Read a config value as one of the three forms; `example` is a pinned reference to suggest."""
    value = raw.strip()
    if value.startswith(LOCAL_PREFIX):
        tag = value[len(LOCAL_PREFIX) :]
        if not _LOCAL_TAG.fullmatch(tag):
            raise ImageRefError(
                f"{value!r} is not a local image tag; write {LOCAL_PREFIX}<repository>:<tag> with a lowercase "
                "repository, no registry host and an explicit tag, e.g. local:cdl/kind-node:v1.36.1-<key> "
                "as `make images` prints it"
            )
        first, _, rest = tag.partition("/")
        if rest and ("." in first or first == "localhost"):  # Docker reads such a first part as a host
            raise ImageRefError(
                f"{value!r} names the registry host {first!r}, but a local image is never pulled: use "
                f"{LOCAL_PREFIX}<repository>:<tag> with no registry host, or pin the registry image by "
                "digest (repository:tag@sha256:<64 hex digits>)"
            )
        return ImageRef(ImageSource.LOCAL_TAG, tag)
    if _IMAGE_ID.fullmatch(value):
        return ImageRef(ImageSource.IMAGE_ID, value)
    if _PINNED.fullmatch(value):
        return ImageRef(ImageSource.REGISTRY, value)
    raise ImageRefError(
        f"{value!r} is not pinned by digest; use repository:tag@sha256:<64 hex digits>, e.g. {example}; "
        f"for an image built on this machine, its image ID (sha256:<64 hex digits>) or {LOCAL_PREFIX}<repository>:<tag>"
    )
