"""The offline supply as one piece (supply/offline.py) and the tools image recipe
(supply/tools_image.py): detection, building only what is missing, and the manifest."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from lab import offline as lab_offline
from supply import chart, cilium_images, frr_image, offline, preloaded_node, tools_image
from supply.toolchain import ToolchainError


def _resolver(answering: set[str]):  # type: ignore[no-untyped-def]
    asked: list[str] = []

    def resolve(host: str, port: int) -> object:
        asked.append(host)
        assert port == 443
        if host not in answering:
            raise OSError(f"{host}: Name or service not known")
        return [("addr",)]

    return resolve, asked


def test_a_machine_that_resolves_no_download_host_needs_the_supply() -> None:
    resolve, asked = _resolver(set())
    assert offline.needs_offline_supply(resolve) is True
    assert asked == list(offline.DOWNLOAD_HOSTS)


@pytest.mark.parametrize("host", offline.DOWNLOAD_HOSTS)
def test_any_download_host_that_resolves_means_the_normal_path(host: str) -> None:
    resolve, _ = _resolver({host})
    assert offline.needs_offline_supply(resolve) is False


def test_a_name_the_resolver_cannot_even_encode_counts_as_unresolved() -> None:
    def resolve(host: str, port: int) -> object:
        raise UnicodeError("label too long")

    assert offline.needs_offline_supply(resolve) is True


def _piece(name: str, built: bool, log: list[str], lane: int = 0) -> offline.Piece:
    return offline.Piece(name, name, lambda env: "/x" if built else None, lambda: log.append(name), lane)


def test_only_the_missing_pieces_are_built_in_order_and_said(capsys: pytest.CaptureFixture[str]) -> None:
    log: list[str] = []
    parts = [_piece("a", True, log), _piece("b", False, log), _piece("c", False, log)]
    assert offline.build_missing({}, parts) == ["b", "c"]
    assert log == ["b", "c"]
    out = capsys.readouterr().out
    assert "reaches no registry" in out and "b, c" in out
    assert "[1/2] b (make b)" in out and "[2/2] c done in" in out


def test_nothing_is_built_when_every_piece_is_cached(capsys: pytest.CaptureFixture[str]) -> None:
    log: list[str] = []
    assert offline.build_missing({}, [_piece("a", True, log)]) == []
    assert log == [] and "every piece of the offline supply is built" in capsys.readouterr().out


def test_the_lanes_run_side_by_side_each_in_its_own_order() -> None:
    """Lane 0's first piece waits until lane 1 has started: built one after another, this would
    time out; and within a lane the order is kept."""
    log: list[str] = []
    lane1_started = threading.Event()

    def first_of_lane0() -> None:
        assert lane1_started.wait(10), "the second lane did not start while the first was building"
        log.append("a")

    def first_of_lane1() -> None:
        lane1_started.set()
        log.append("c")

    parts = [
        offline.Piece("a", "a", lambda env: None, first_of_lane0, 0),
        offline.Piece("b", "b", lambda env: None, lambda: log.append("b"), 0),
        offline.Piece("c", "c", lambda env: None, first_of_lane1, 1),
        offline.Piece("d", "d", lambda env: None, lambda: log.append("d"), 1),
    ]
    assert offline.build_missing({}, parts) == ["a", "b", "c", "d"]
    assert log.index("a") < log.index("b") and log.index("c") < log.index("d")


def test_a_failed_piece_is_said_stops_new_pieces_and_is_raised(capsys: pytest.CaptureFixture[str]) -> None:
    """Lane 1 fails while lane 0's first piece is still building: that piece ends, lane 0 starts
    nothing more, and the failure reaches the caller."""
    log: list[str] = []
    failed = threading.Event()

    def slow() -> None:
        assert failed.wait(10)
        time.sleep(0.05)
        log.append("a")

    def broken() -> None:
        failed.set()
        raise ToolchainError("go build failed: cilium-agent")

    parts = [
        offline.Piece("a", "a", lambda env: None, slow, 0),
        offline.Piece("b", "b", lambda env: None, lambda: log.append("b"), 0),
        offline.Piece("c", "c", lambda env: None, broken, 1),
    ]
    with pytest.raises(ToolchainError, match="cilium-agent"):
        offline.build_missing({}, parts)
    assert log == ["a"]
    out = capsys.readouterr().out
    assert "[3/3] c failed after" in out and "cilium-agent" in out
    assert "[2/3] b (make b)" not in out


def test_a_piece_without_a_lane_is_built_after_every_lane_has_ended() -> None:
    """The preloaded node image is made of what both lanes build: it starts only when both end."""
    log: list[str] = []

    def after(seconds: float, name: str) -> Callable[[], None]:
        def build() -> None:
            time.sleep(seconds)
            log.append(name)

        return build

    parts = [
        offline.Piece("join", "join", lambda env: None, after(0, "join"), None),
        offline.Piece("a", "a", lambda env: None, after(0.1, "a"), 0),
        offline.Piece("b", "b", lambda env: None, after(0.2, "b"), 1),
    ]
    assert offline.build_missing({}, parts) == ["join", "a", "b"]
    assert log[-1] == "join" and sorted(log[:2]) == ["a", "b"]


def test_a_piece_without_a_lane_is_not_built_after_a_lane_failed() -> None:
    log: list[str] = []

    def broken() -> None:
        raise ToolchainError("debootstrap failed")

    parts = [
        offline.Piece("a", "a", lambda env: None, broken, 0),
        offline.Piece("join", "join", lambda env: None, lambda: log.append("join"), None),
    ]
    with pytest.raises(ToolchainError, match="debootstrap"):
        offline.build_missing({}, parts)
    assert log == []


def test_the_supply_builds_in_two_lanes_of_unlike_work() -> None:
    """The toolchain and the node image (the two longest builds) start side by side; the preloaded
    node image, made of both lanes' images, comes after them."""
    lanes = {p.target: p.lane for p in offline.pieces()}
    assert set(lanes) == {
        "toolchain",
        "images",
        "chart",
        "cilium-images",
        "tools-image",
        "frr-image",
        "preloaded-node-image",
    }
    assert lanes["toolchain"] != lanes["images"]
    assert lanes["cilium-images"] != lanes["toolchain"]
    assert lanes["preloaded-node-image"] is None


def _built(monkeypatch: pytest.MonkeyPatch, **missing: bool) -> None:
    monkeypatch.setattr(
        preloaded_node,
        "current_tag",
        lambda env: None if missing.get("preloaded") else "cdl/kind-node-preloaded:v1-k",
    )
    monkeypatch.setattr(
        chart,
        "current_path",
        lambda env: None if missing.get("chart") else Path("/c/cilium-1.20.2.tgz"),
    )
    monkeypatch.setattr(
        cilium_images,
        "current_tags",
        lambda env: (
            None if missing.get("cilium") else ("cdl/cilium:1.20.2-k", "cdl/operator-generic:1.20.2-k")
        ),
    )
    monkeypatch.setattr(
        tools_image,
        "current_tag",
        lambda env: None if missing.get("tools") else "cdl/tools:bookworm-k",
    )
    monkeypatch.setattr(
        frr_image, "current_tag", lambda env: None if missing.get("frr") else "cdl/frr:bookworm-k"
    )


def test_the_manifest_is_what_the_lab_switch_reads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _built(monkeypatch)
    env: Mapping[str, str] = {"XDG_CACHE_HOME": str(tmp_path)}
    path = offline.write_manifest(env)
    assert path.parent == tmp_path / "cilium-datapath-lab" / "offline"
    supply = lab_offline.load({lab_offline.ENV: str(path)})
    assert supply is not None
    assert supply.node_images() == (
        "cdl/cilium:1.20.2-k",
        "cdl/operator-generic:1.20.2-k",
        "cdl/tools:bookworm-k",
    )
    assert supply.cilium_version == "1.20.2" and supply.node_image == "cdl/kind-node-preloaded:v1-k"
    assert offline.write_manifest(env) == path  # the same supply, the same file
    monkeypatch.setattr(tools_image, "current_tag", lambda env: "cdl/tools:bookworm-other")
    other = offline.write_manifest(env)
    assert other != path and json.loads(other.read_text())["tools"] == "cdl/tools:bookworm-other"


@pytest.mark.parametrize(
    ("missing", "target"),
    [
        ("preloaded", "preloaded-node-image"),
        ("chart", "chart"),
        ("cilium", "cilium-images"),
        ("tools", "tools-image"),
        ("frr", "frr-image"),
    ],
)
def test_a_manifest_of_a_piece_not_built_names_its_make_target(
    monkeypatch: pytest.MonkeyPatch, missing: str, target: str
) -> None:
    _built(monkeypatch, **{missing: True})
    with pytest.raises(ToolchainError, match=rf"not built yet: {target}; run `make supply`"):
        offline.manifest_data({})


RECIPE = {
    "repository": "cdl/tools",
    "suite": "bookworm",
    "mirror": "http://deb.debian.org/debian",
    "packages": ["iproute2", "tcpdump"],
}


def test_the_tools_recipe_in_the_repository_parses_and_carries_what_the_checks_call() -> None:
    recipe = tools_image.load_recipe()
    for package in ("iproute2", "tcpdump", "iputils-ping", "python3-minimal", "socat"):
        assert package in recipe.packages
    key = tools_image.tools_key()
    assert tools_image.tools_tag(recipe, key) == f"cdl/tools:bookworm-{key}"
    argv = tools_image.rootfs_argv(recipe, tools_image.RECIPE_DIR, Path("/t"))
    assert argv[-1] == ",".join(recipe.packages) and argv[2:5] == ["/t", "bookworm", recipe.mirror]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"extra": "1"}, "unknown keys ['extra']"),
        ({"suite": None}, "missing keys ['suite']"),
        ({"packages": []}, "non-empty list"),
        ({"packages": "iproute2"}, "non-empty list"),
        ({"packages": ["iproute2", "x; rm -rf /"]}, "package 'x; rm -rf /'"),
        ({"repository": "quay.io/Tools"}, "repository"),
        ({"suite": "bookworm-backports"}, "suite"),
        ({"mirror": "ftp://deb.debian.org/debian"}, "mirror"),
        ({"mirror": "http://deb.debian.org/$(id)"}, "mirror"),
    ],
)
def test_a_bad_tools_recipe_is_refused_naming_the_value(change: dict[str, object], words: str) -> None:
    data = {k: v for k, v in {**RECIPE, **change}.items() if v is not None}
    with pytest.raises(tools_image.ToolsImageError) as err:
        tools_image.parse_recipe(data)
    assert words in str(err.value)


def test_the_tools_key_covers_every_recipe_file(tmp_path: Path) -> None:
    import shutil  # noqa: PLC0415

    recipe_dir = tmp_path / "tools"
    shutil.copytree(tools_image.RECIPE_DIR, recipe_dir)
    key = tools_image.tools_key(recipe_dir)
    (recipe_dir / "rootfs.sh").write_text((recipe_dir / "rootfs.sh").read_text() + "\n")
    assert tools_image.tools_key(recipe_dir) != key
