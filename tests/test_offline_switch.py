"""The one switch (lab/offline.py): with LAB_OFFLINE_SUPPLY naming a manifest, every stack, the
shipped ones and one a user writes, runs this machine's own images and chart; without it, nothing
changes. Evaluated under the recording mocks, so what is asserted is what Pulumi would be given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mockstack import Evaluation, evaluate, stack_config, with_project_keys

from lab import offline
from lab.config import DEFAULT_TOOLS_IMAGE, LabConfigError, parse_config, with_offline_supply
from lab.image_ref import ImageSource

MANIFEST: dict[str, str] = {
    "nodeImage": "cdl/kind-node:v1.36.1-0123456789abcdef",
    "ciliumVersion": "1.20.2",
    "ciliumChart": "/cache/charts/1.20.2-abc/cilium-1.20.2.tgz",
    "ciliumAgent": "cdl/cilium:1.20.2-fedcba9876543210",
    "ciliumOperator": "cdl/operator-generic:1.20.2-fedcba9876543210",
    "tools": "cdl/tools:bookworm-00112233aabbccdd",
    "frr": "cdl/frr:bookworm-44556677eeff0011",
}
COMMAND = "command:local:Command"


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def switched_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = _write(tmp_path, MANIFEST)
    monkeypatch.setenv(offline.ENV, str(path))
    return path


# --- the manifest


def test_a_manifest_reads_into_the_supply() -> None:
    supply = offline.parse(MANIFEST, "m.json")
    assert supply.node_images() == (MANIFEST["ciliumAgent"], MANIFEST["ciliumOperator"], MANIFEST["tools"])
    assert supply.cilium_chart == MANIFEST["ciliumChart"] and supply.manifest == "m.json"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"nodeImage": None}, "no 'nodeImage'"),
        ({"extra": "x"}, "unknown key 'extra'"),
        ({"tools": 3}, "'tools' must be a string, not int"),
        ({"ciliumVersion": "1.20"}, "'ciliumVersion' '1.20' is not a version X.Y.Z"),
        ({"ciliumChart": "cilium-1.20.2.tgz"}, "not an absolute path to a .tgz chart"),
        ({"ciliumChart": "/x/cilium-1.20.2.tar"}, "not an absolute path to a .tgz chart"),
        (
            {"ciliumAgent": "quay.io/cilium/cilium:v1.20.2"},
            "'ciliumAgent' 'quay.io/cilium/cilium:v1.20.2' is not a local",
        ),
        ({"nodeImage": "cdl/kind-node"}, "is not a local <repository>:<tag>"),
        ({"ciliumOperator": "cdl/operator:1.20.2-x"}, "is not named <repository>-generic:<tag>"),
        ({"frr": None}, "no 'frr'"),
        ({"frr": "quay.io/frrouting/frr:10.7.0"}, "'frr' 'quay.io/frrouting/frr:10.7.0' is not a local"),
    ],
)
def test_each_bad_manifest_value_is_named_with_the_fix(change: dict[str, Any], words: str) -> None:
    data: dict[str, Any] = {**MANIFEST, **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(offline.OfflineSupplyError) as err:
        offline.parse(data, "m.json")
    assert words in str(err.value) and "m.json" in str(err.value) and "make supply" in str(err.value)


def test_a_manifest_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(offline.OfflineSupplyError, match="not a JSON object"):
        offline.parse(["a"], "m.json")


def test_the_switch_is_off_unless_the_variable_names_a_file(tmp_path: Path) -> None:
    assert offline.load({}) is None
    assert offline.load({offline.ENV: ""}) is None
    with pytest.raises(offline.OfflineSupplyError, match=r"no such file.*make supply"):
        offline.load({offline.ENV: str(tmp_path / "absent.json")})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(offline.OfflineSupplyError, match="cannot read it"):
        offline.load({offline.ENV: str(tmp_path / "bad.json")})
    loaded = offline.load({offline.ENV: str(_write(tmp_path, MANIFEST))})
    assert loaded is not None and loaded.tools == MANIFEST["tools"]


def test_helm_overrides_name_the_built_images_as_the_chart_composes_them() -> None:
    values = offline.helm_overrides(offline.parse(MANIFEST, "m"))
    assert values == {
        "image": {"repository": "cdl/cilium", "tag": "1.20.2-fedcba9876543210"},
        # the chart appends -generic to the operator repository
        "operator": {"image": {"repository": "cdl/operator", "tag": "1.20.2-fedcba9876543210"}},
    }


# --- the config under the switch


def _config(**raw: Any) -> Any:
    return parse_config({"mode": "overlay", **raw}, "overlay")


def test_a_registry_node_image_is_swapped_and_a_local_one_kept() -> None:
    supply = offline.parse(MANIFEST, "m")
    swapped = with_offline_supply(_config(), supply)
    assert (
        swapped.node_image.source is ImageSource.LOCAL_TAG and swapped.node_image.ref == MANIFEST["nodeImage"]
    )
    assert swapped.tools_image == MANIFEST["tools"] and swapped.offline is supply
    own = with_offline_supply(_config(nodeImage="local:me/node:v1"), supply)
    assert own.node_image.ref == "me/node:v1"
    assert with_offline_supply(_config(), None) == _config()
    assert _config().tools_image == DEFAULT_TOOLS_IMAGE


def test_another_cilium_version_is_refused_naming_the_key() -> None:
    with pytest.raises(LabConfigError) as err:
        with_offline_supply(_config(ciliumVersion="1.19.4"), offline.parse(MANIFEST, "m.json"))
    text = str(err.value)
    assert "cilium-datapath-lab:ciliumVersion" in text and "1.20.2" in text and "m.json" in text


# --- the program under the switch


def _offline_release(ev: Evaluation) -> dict[str, Any]:
    return ev.one("kubernetes:helm.sh/v3:Release").inputs


def test_the_overlay_stack_runs_this_machines_images_and_chart(switched_on: Path) -> None:
    ev = evaluate("overlay")
    release = _offline_release(ev)
    assert release["chart"] == MANIFEST["ciliumChart"] and "repositoryOpts" not in release
    values = release["values"]
    assert values["image"] == {
        "repository": "cdl/cilium",
        "tag": "1.20.2-fedcba9876543210",
        "useDigest": False,
        "pullPolicy": "Never",
    }
    assert values["operator"]["image"]["repository"] == "cdl/operator" and values["envoy"] == {
        "enabled": False
    }
    create = ev.one(COMMAND, "-cluster").inputs
    assert f"image: {MANIFEST['nodeImage']}" in create["stdin"]
    assert create["environment"]["LAB_LOCAL_IMAGE"] == MANIFEST["nodeImage"]
    load = ev.one(COMMAND, "-images")
    assert load.inputs["environment"]["LAB_IMAGES"].split() == [
        MANIFEST["ciliumAgent"],
        MANIFEST["ciliumOperator"],
        MANIFEST["tools"],
    ]
    assert ev.by_urn(load.deleted_with).name.endswith("-cluster")
    assert load.urn in ev.one("kubernetes:helm.sh/v3:Release").dependencies
    assert {r.inputs["name"] for r in ev.by_type("docker:index/remoteImage:RemoteImage")} == {
        MANIFEST["tools"]
    }
    pods = ev.by_type("kubernetes:core/v1:Pod")
    assert pods and {p.inputs["spec"]["containers"][0]["image"] for p in pods} == {MANIFEST["tools"]}


def test_without_the_switch_nothing_is_loaded_and_the_chart_comes_from_its_repository(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(offline.ENV, raising=False)
    ev = evaluate("overlay")
    assert not [r for r in ev.by_type(COMMAND) if r.name.endswith("-images")]
    release = _offline_release(ev)
    assert release["chart"] == "cilium" and release["repositoryOpts"] == {"repo": "https://helm.cilium.io"}
    assert "repository" not in release["values"]["image"]


def test_a_stack_file_a_user_writes_runs_here_with_the_same_switch(switched_on: Path) -> None:
    """Another name, another subnet, more workers, the shipped registry nodeImage: nothing to edit."""
    raw = with_project_keys(
        stack_config("overlay"), clusterName="my-lab", underlaySubnet="172.30.77.0/24", workers=3
    )
    ev = evaluate("my-lab", raw)
    create = ev.one(COMMAND, "-cluster").inputs
    assert create["environment"]["LAB_CLUSTER"] == "my-lab"
    assert create["stdin"].count(f"image: {MANIFEST['nodeImage']}") == 4
    assert ev.one(COMMAND, "-images").inputs["environment"]["LAB_CLUSTER"] == "my-lab"


def test_the_bgp_echo_server_runs_the_tools_image(switched_on: Path) -> None:
    ev = evaluate("bgp")
    echo = ev.one("kubernetes:apps/v1:Deployment")
    assert echo.inputs["spec"]["template"]["spec"]["containers"][0]["image"] == MANIFEST["tools"]


def test_the_bgp_routers_run_the_frr_image_built_here(switched_on: Path) -> None:
    """Under the switch the routers' image is the one the manifest names; the container spec (the
    upstream entrypoint and start command) stays the same, which the Debian image honours."""
    ev = evaluate("bgp")
    routers = [i for i in ev.by_type("docker:index/remoteImage:RemoteImage") if "tools" not in i.name]
    assert routers and {i.inputs["name"] for i in routers} == {MANIFEST["frr"]}


def test_without_the_switch_the_routers_run_the_pinned_upstream_frr_image() -> None:
    ev = evaluate("bgp")
    routers = [i for i in ev.by_type("docker:index/remoteImage:RemoteImage") if "tools" not in i.name]
    assert routers and {i.inputs["name"] for i in routers} == {"quay.io/frrouting/frr:10.7.0"}


def test_a_broken_manifest_stops_the_program_before_any_resource(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(offline.ENV, str(tmp_path / "gone.json"))
    ev = Evaluation(stack="overlay")
    with pytest.raises(Exception, match="no such file"):
        evaluate("overlay", evaluation=ev)
    assert [r.type for r in ev if r.custom] == []
