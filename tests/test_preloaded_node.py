"""The preloaded node image (supply/preloaded_node.py): its key, the checks that guard the build, and
the build's steps against a fake `docker` that answers from files. The real build runs in
`make supply` and every real lab boots from its image (tests/test_real_labs.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from supply import cilium_images, node_image, preloaded_node, tools_image
from supply.preloaded_node import PreloadError, PreloadInputs

NODE = "cdl/kind-node:v1.36.1-aaaa"
IMAGES = ("cdl/cilium:1.20.2-k", "cdl/operator-generic:1.20.2-k", "cdl/tools:bookworm-k")
INPUTS = PreloadInputs(node=NODE, images=IMAGES)


def test_the_tag_names_the_kubernetes_version_and_a_key_of_what_goes_in() -> None:
    tag = INPUTS.tag()
    assert tag.startswith("cdl/kind-node-preloaded:v1.36.1-") and len(tag.rpartition("-")[2]) == 16
    assert PreloadInputs(node=NODE, images=IMAGES).tag() == tag  # the same supply, the same tag
    assert PreloadInputs(node="cdl/kind-node:v1.36.1-bbbb", images=IMAGES).tag() != tag
    assert PreloadInputs(node=NODE, images=(*IMAGES[:2], "cdl/tools:bookworm-other")).tag() != tag
    assert PreloadInputs(node=NODE, images=IMAGES[:2]).tag() != tag


@pytest.mark.parametrize(
    ("image", "ref"),
    [
        ("cdl/cilium:1.20.2-k", "docker.io/cdl/cilium:1.20.2-k"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("quay.io/cilium/cilium:v1.20.2", "quay.io/cilium/cilium:v1.20.2"),
        ("localhost/x:1", "localhost/x:1"),
        ("registry:5000/x:1", "registry:5000/x:1"),
    ],
)
def test_containerd_names_an_image_with_its_registry(image: str, ref: str) -> None:
    assert preloaded_node.containerd_ref(image) == ref


def test_an_image_counts_as_imported_only_by_its_name_and_its_id() -> None:
    ids = {IMAGES[0]: "aa", IMAGES[1]: "bb"}
    both = "docker.io/cdl/cilium:1.20.2-k\nsha256:aa\ndocker.io/cdl/operator-generic:1.20.2-k\nsha256:bb\n"
    assert preloaded_node.missing_refs(both, IMAGES[:2], ids) == []
    assert preloaded_node.missing_refs(both.replace("sha256:bb", "sha256:zz"), IMAGES[:2], ids) == [IMAGES[1]]
    assert preloaded_node.missing_refs(both.replace("docker.io/cdl/cilium", "x"), IMAGES[:2], ids) == [
        IMAGES[0]
    ]


def test_only_containerd_s_store_and_its_own_empty_folders_may_change() -> None:
    fine = "C /var\nC /var/lib\nA /var/lib/containerd/io.containerd.content.v1.content\nA /opt/containerd/lib\nA /etc/cni/net.d\n"
    assert preloaded_node.stray_changes(fine) == []
    assert preloaded_node.stray_changes(fine + "A /preload\nC /etc/passwd\n") == [
        "A /preload",
        "C /etc/passwd",
    ]
    assert preloaded_node.stray_changes("A /var/lib/containerd-evil\n") == ["A /var/lib/containerd-evil"]


def test_the_commit_puts_the_node_image_s_entrypoint_back() -> None:
    assert preloaded_node.commit_argv("c", "t") == [
        "docker", "commit", "--change", 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]', "c", "t",
    ]  # fmt: skip


FAKE_DOCKER = r"""#!/bin/bash
echo "docker $*" >> "$FAKE_LOG"
id_of() { awk -v ref="$1" '$1 == ref { print $2; found = 1 } END { exit !found }' "$FAKE_STATE/ids"; }
case "$1" in
  image) id_of "$5" ;;
  save) : > "$3" ;;
  run) ;;
  exec)
    case "$*" in
      *"images ls"*) cat "$FAKE_STATE/listed" ;;
      *"images import"*) exit "$(cat "$FAKE_STATE/import-rc" 2>/dev/null || echo 0)" ;;
    esac ;;
  diff) cat "$FAKE_STATE/diff" ;;
  commit) echo "$5 committed" >> "$FAKE_STATE/ids" ;;
  inspect) cat "$FAKE_STATE/metadata-${4//\//_}" ;;
  rm|rmi) ;;
esac
"""


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    for folder in (bin_dir, state):
        folder.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    (state / "ids").write_text(f"{NODE} n0\n" + "".join(f"{i} id{n}\n" for n, i in enumerate(IMAGES)))
    (state / "listed").write_text(
        "".join(f"{preloaded_node.containerd_ref(i)}\nsha256:id{n}\n" for n, i in enumerate(IMAGES))
    )
    (state / "diff").write_text("C /var/lib\nA /var/lib/containerd/io.containerd.metadata.v1.bolt\n")
    monkeypatch.setattr(node_image, "current_tag", lambda env: NODE)
    monkeypatch.setattr(cilium_images, "current_tags", lambda env: IMAGES[:2])
    monkeypatch.setattr(tools_image, "current_tag", lambda env: IMAGES[2])
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "FAKE_STATE": str(state),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }


def _metadata(engine: dict[str, str], node: str, built: str) -> None:
    state = Path(engine["FAKE_STATE"])
    (state / f"metadata-{NODE.replace('/', '_')}").write_text(node)
    (state / f"metadata-{INPUTS.tag().replace('/', '_')}").write_text(built)


def _calls(engine: dict[str, str]) -> list[str]:
    return Path(engine["FAKE_LOG"]).read_text().splitlines()


def test_a_build_imports_checks_commits_and_removes_its_container(engine: dict[str, str]) -> None:
    _metadata(engine, "meta", "meta")
    assert preloaded_node.build(engine) == INPUTS.tag()
    calls = _calls(engine)
    verbs = [c.split()[1] for c in calls if c.split()[1] != "image"]
    assert verbs == [
        "save",
        "run",
        "exec",
        "exec",
        "exec",
        "exec",
        "exec",
        "diff",
        "commit",
        "inspect",
        "inspect",
        "rm",
    ]
    assert any("images import --all-platforms --no-unpack /run/preload/images.tar" in c for c in calls)
    assert preloaded_node.current_tag(engine) == INPUTS.tag()
    assert not any((Path(engine["XDG_CACHE_HOME"]) / "cilium-datapath-lab" / "preloaded-node").iterdir())


def test_a_built_tag_is_not_built_again(engine: dict[str, str]) -> None:
    with Path(engine["FAKE_STATE"], "ids").open("a") as ids:
        ids.write(f"{INPUTS.tag()} done\n")
    assert preloaded_node.build(engine) == INPUTS.tag()
    assert not any(c.split()[1] in ("save", "run", "commit") for c in _calls(engine))


def test_an_image_the_engine_lacks_is_named_with_the_fix(engine: dict[str, str]) -> None:
    Path(engine["FAKE_STATE"], "ids").write_text(f"{NODE} n0\n{IMAGES[0]} id0\n{IMAGES[2]} id2\n")
    with pytest.raises(
        PreloadError, match=r"the engine has no cdl/operator-generic:1.20.2-k; run `make supply`"
    ):
        preloaded_node.build(engine)


@pytest.mark.parametrize(
    ("break_it", "words"),
    [
        ("listed", "does not list cdl/tools:bookworm-k with its image ID"),
        ("diff", r"changed more than containerd's store: A /etc/hostname-leftover"),
        ("import-rc", r"ctr images import failed \(exit 3\)"),
    ],
)
def test_a_bad_build_fails_naming_why_and_leaves_no_container(
    engine: dict[str, str], break_it: str, words: str
) -> None:
    state = Path(engine["FAKE_STATE"])
    if break_it == "listed":
        (state / "listed").write_text((state / "listed").read_text().replace("sha256:id2", "sha256:old"))
    elif break_it == "diff":
        (state / "diff").write_text("A /etc/hostname-leftover\n")
    else:
        (state / "import-rc").write_text("3")
    with pytest.raises(PreloadError, match=words):
        preloaded_node.build(engine)
    calls = _calls(engine)
    assert calls[-1].startswith("docker rm --force cdl-preload-") and not any(" commit " in c for c in calls)


def test_a_commit_whose_metadata_differs_from_the_node_image_is_removed(engine: dict[str, str]) -> None:
    _metadata(
        engine, '["/usr/local/bin/entrypoint","/sbin/init"] null "SIGRTMIN+3"', '["sleep"] ["infinity"] null'
    )
    with pytest.raises(PreloadError, match="is not the node image's"):
        preloaded_node.build(engine)
    assert f"docker rmi {INPUTS.tag()}" in _calls(engine)


def test_the_cli_says_what_to_run_when_it_is_not_built(engine: dict[str, str]) -> None:
    proc = subprocess.run(
        ["python3", "-m", "supply.preloaded_node", "tag"],
        env={**engine, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "run `make preloaded-node-image`" in proc.stderr
