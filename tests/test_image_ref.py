"""Node image references (lab/image_ref.py): a registry image pinned by digest, an image ID, or a
`local:` tag the preflight finds in the engine; anything else is rejected before any resource."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

import pytest
from mockstack import evaluate, stack_config, with_project_keys

from host import preflight
from lab.config import DEFAULT_NODE_IMAGE, LabConfig, LabConfigError, key, parse_config
from lab.image_ref import ImageRefError, ImageSource, parse_image_ref
from lab.kind_config import kind_config
from supply import node_image as images
from supply.toolchain import ToolchainError

DIGEST = "sha256:" + "0123456789abcdef" * 4
LOCAL = "cdl/kind-node:v1.36.1-bcbfcf1be939285d"


@pytest.mark.parametrize(
    ("raw", "source", "ref"),
    [
        (DEFAULT_NODE_IMAGE, ImageSource.REGISTRY, DEFAULT_NODE_IMAGE),
        (f"kindest/node@{DIGEST}", ImageSource.REGISTRY, f"kindest/node@{DIGEST}"),
        (f"registry.example:5000/lab/node:v1@{DIGEST}", ImageSource.REGISTRY, None),
        (f"  {DIGEST} ", ImageSource.IMAGE_ID, DIGEST),
        (f"local:{LOCAL}", ImageSource.LOCAL_TAG, LOCAL),
        ("local:node:1", ImageSource.LOCAL_TAG, "node:1"),
        ("local:my_lab/kind-node:V1.x", ImageSource.LOCAL_TAG, "my_lab/kind-node:V1.x"),
    ],
)
def test_accepted_forms(raw: str, source: ImageSource, ref: str | None) -> None:
    image = parse_image_ref(raw, DEFAULT_NODE_IMAGE)
    assert image.source is source
    assert image.ref == (ref or raw.strip()) == str(image)
    assert image.must_be_local is (source is not ImageSource.REGISTRY)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("kindest/node:v1.36.1", "not pinned by digest"),
        ("kindest/node:v1.36.1@sha256:abc", "64 hex"),
        ("sha256:abc", "not pinned by digest"),
        ("sha256:" + "A" * 64, "not pinned by digest"),
        ("ceba897e2786", "image ID (sha256:<64 hex digits>)"),
        ("local:cdl/kind-node", "explicit tag"),
        ("local:Cdl/kind-node:1", "lowercase"),
        ("local:quay.io/cilium/cilium:v1.20.2", "no registry host"),
        ("local:localhost/lab:1", "no registry host"),
        ("local:registry:5000/lab:1", "not a local image tag"),
        (f"local:cdl/kind-node:1@{DIGEST}", "not a local image tag"),
        ("local:cdl/kind-node:1;reboot", "not a local image tag"),
        ("local:", "not a local image tag"),
        ("local:cdl/kind-node:" + "t" * 129, "not a local image tag"),
    ],
)
def test_rejected_forms_say_which_forms_are_accepted(raw: str, words: str) -> None:
    with pytest.raises(ImageRefError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_image_ref(raw, DEFAULT_NODE_IMAGE)


def test_a_bad_reference_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(LabConfigError) as err:
        parse_config({"mode": "overlay", "nodeImage": "local:quay.io/frr:1"}, "overlay")
    assert [i.key for i in err.value.issues] == ["nodeImage"]
    assert "no registry host" in str(err.value)


def test_kind_is_given_the_reference_without_the_local_prefix() -> None:
    config = parse_config({"mode": "overlay", "nodeImage": f"local:{LOCAL}"}, "overlay")
    assert {n["image"] for n in kind_config(config)["nodes"]} == {LOCAL}
    by_id = parse_config({"mode": "overlay", "nodeImage": DIGEST}, "overlay")
    assert {n["image"] for n in kind_config(by_id)["nodes"]} == {DIGEST}


def test_images_names_the_config_key_the_lab_reads() -> None:
    assert key("nodeImage") == images.NODE_IMAGE_KEY


def _engine(code: int, out: str, err: str = "") -> preflight.Runner:
    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        assert list(argv[:4]) == ["docker", "image", "inspect", "--format"]
        return subprocess.CompletedProcess(list(argv), code, out, err)

    return run


def _config(node_image: str) -> LabConfig:
    return parse_config({"mode": "overlay", "nodeImage": node_image}, "overlay")


@pytest.mark.parametrize("node_image", [f"local:{LOCAL}", DIGEST, DEFAULT_NODE_IMAGE])
def test_an_image_the_engine_holds_passes(node_image: str) -> None:
    finding = preflight.check_node_image(_config(node_image), _engine(0, f"{DIGEST}\n"))
    assert finding.ok and "is in the Docker engine" in finding.what and DIGEST[:19] in finding.what


@pytest.mark.parametrize(
    "answer",
    [(1, "", "Error: No such image: x"), (0, "\n", "")],
    ids=["no such image", "empty answer"],
)
@pytest.mark.parametrize("node_image", [f"local:{LOCAL}", DIGEST])
def test_a_local_image_the_engine_lacks_fails_with_the_key_and_fix(
    node_image: str, answer: tuple[int, str, str]
) -> None:
    finding = preflight.check_node_image(_config(node_image), _engine(*answer))
    assert not finding.ok and finding.required
    assert key("nodeImage") in finding.what and "never pulled" in finding.what
    assert "make images" in finding.fix and f"pulumi config set {key('nodeImage')}" in finding.fix


def test_a_missing_registry_image_is_a_warning_that_points_to_the_offline_image() -> None:
    finding = preflight.check_node_image(_config(DEFAULT_NODE_IMAGE), _engine(1, "", "No such image"))
    assert not finding.ok and not finding.required
    assert "kind will pull it by digest" in finding.what and "make images" in finding.fix


def test_a_missing_image_id_says_the_id_names_one_import() -> None:
    by_id = preflight.check_node_image(_config(DIGEST), _engine(1, "", "No such image"))
    by_tag = preflight.check_node_image(_config(f"local:{LOCAL}"), _engine(1, "", "No such image"))
    assert "an image ID names one import" in by_id.fix and "image ID" not in by_tag.fix


def test_the_stack_preflight_asks_about_the_node_image() -> None:
    asked: list[list[str]] = []

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        asked.append(list(argv))
        if list(argv[:3]) == ["docker", "image", "inspect"]:
            return subprocess.CompletedProcess(list(argv), 1, "", "No such image")
        if list(argv[:2]) == ["docker", "network"]:
            return subprocess.CompletedProcess(list(argv), 0, "[]" if "inspect" in argv else "bridge\n", "")
        return subprocess.CompletedProcess(list(argv), 0, "28.2.2\n", "")

    def which(_: str) -> str:
        return "/usr/bin/x"

    config = _config(f"local:{LOCAL}")
    findings = preflight.preflight(run, which, config=config, system="Darwin")
    failed = [f.what for f in findings if not f.ok]
    assert len(failed) == 1 and failed[0].startswith(f"{key('nodeImage')}: the local tag {LOCAL} "), failed
    assert ["docker", "image", "inspect", "--format", "{{.Id}}", LOCAL] in asked


def test_on_the_real_engine_a_local_tag_is_found_by_tag_and_by_id_and_a_moved_one_is_not() -> None:
    """Skips without the engine or the built node image (`make dockerd`, `make images`)."""
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no Docker engine reachable: run `make dockerd`")
    try:
        tag = images.current_tag(os.environ)
    except ToolchainError as exc:
        pytest.skip(f"cannot look up the node image: {exc}")
    if tag is None or images.engine_image_id(tag, os.environ) is None:
        pytest.skip("the kind node image is not built or not imported: run `make images`")
    image_id = images.engine_image_id(tag, os.environ)
    assert image_id is not None
    for node_image in (f"local:{tag}", f"sha256:{image_id}"):
        assert preflight.check_node_image(_config(node_image)).ok, node_image
    gone = f"local:{tag}-not-built"
    finding = preflight.check_node_image(_config(gone))
    assert not finding.ok and "No such image" in finding.what


@pytest.mark.parametrize(
    ("node_image", "local"),
    [(f"local:{LOCAL}", LOCAL), (DIGEST, DIGEST), (DEFAULT_NODE_IMAGE, None)],
)
def test_the_cluster_command_names_a_local_image_for_its_script(node_image: str, local: str | None) -> None:
    raw = with_project_keys(stack_config("overlay"), nodeImage=node_image)
    env = evaluate("overlay", raw).one("command:local:Command", "-cluster").inputs["environment"]
    assert env.get("LAB_LOCAL_IMAGE") == local


def test_only_the_first_path_part_can_name_a_registry_host() -> None:
    """Docker reads a host from the first part alone: a dot further down is part of a name."""
    assert parse_image_ref("local:cdl/kind.node/x:1", DEFAULT_NODE_IMAGE).ref == "cdl/kind.node/x:1"
    with pytest.raises(ImageRefError, match="registry host 'localhost'"):
        parse_image_ref("local:localhost/lab/node:1", DEFAULT_NODE_IMAGE)


def test_the_refusals_word_for_word() -> None:
    """What a person reads to fix the value, in full."""
    cases = {
        "local:Bad:1": (
            "'local:Bad:1' is not a local image tag; write local:<repository>:<tag> with a lowercase "
            "repository, no registry host and an explicit tag, e.g. local:cdl/kind-node:v1.36.1-<key> "
            "as `make images` prints it"
        ),
        "local:quay.io/x:1": (
            "'local:quay.io/x:1' names the registry host 'quay.io', but a local image is never pulled: use "
            "local:<repository>:<tag> with no registry host, or pin the registry image by "
            "digest (repository:tag@sha256:<64 hex digits>)"
        ),
    }
    for raw, text in cases.items():
        with pytest.raises(ImageRefError) as err:
            parse_image_ref(raw, DEFAULT_NODE_IMAGE)
        assert str(err.value) == text


def test_the_config_error_suggests_the_default_image_as_the_pinned_example() -> None:
    with pytest.raises(LabConfigError) as err:
        parse_config({"mode": "overlay", "nodeImage": "kindest/node:v1.36.1"}, "overlay")
    assert f"e.g. {DEFAULT_NODE_IMAGE};" in str(err.value)
