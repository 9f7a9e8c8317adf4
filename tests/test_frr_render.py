"""FRR in and out: what a stack config renders to (golden files), that FRR accepts it, and how its JSON is read.

Golden inputs live in tests/golden/frr/cases.json, expected output next to them as <case>.conf.
The tests only compare: after a deliberate template change, rewrite the goldens with
`tests/golden/frr/regenerate.py` (a separate act) and read the diff. Every rendered config is
also parsed by FRR's own `vtysh -C` (Debian's 8.4 here).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import shutil
import subprocess
import types
from pathlib import Path
from typing import Any, cast

import jinja2
import pytest

from lab.config import parse_config
from lab.frr import FrrRouterSpec, frr_spec, render_frr_files
from lab.plan import plan
from verify import parsers
from verify.bgp_checks import frr_peer_states, frr_route_nexthops, kernel_nexthops
from verify.bgp_replica import daemons_to_start, parse_daemons_file

GOLDEN = Path(__file__).resolve().parent / "golden" / "frr"
CASES: dict[str, dict[str, Any]] = {
    name: case
    for name, case in json.loads((GOLDEN / "cases.json").read_text()).items()
    if not name.startswith("_")
}

# FRR 10.7's daemon list (tools/frrcommon.sh.in at frr-10.7.0); 8.4's is the same minus mgmtd.
FRR_DAEMONS = [
    "mgmtd",
    "zebra",
    "bfdd",
    "bgpd",
    "ripd",
    "ripngd",
    "ospfd",
    "ospf6d",
    "isisd",
    "babeld",
    "pimd",
    "pim6d",
    "ldpd",
    "nhrpd",
    "eigrpd",
    "sharpd",
    "pbrd",
    "staticd",
    "fabricd",
    "vrrpd",
    "pathd",
]

# Every configuration line the template may emit, each checked against both grammars: FRR 8.4's
# (vtysh -C below) and FRR 10.7's (bgpd/bgp_vty.c, lib/command.c, lib/log_cli.c at frr-10.7.0).
# A line matching none of these is a command nobody has checked in 10.7.
BOTH_VERSIONS = tuple(
    re.compile(p)
    for p in (
        r"\s*!.*",
        r"hostname [a-z0-9][a-z0-9-]*",
        r"log stdout informational",
        r"router bgp \d+",
        r" bgp router-id \d+\.\d+\.\d+\.\d+",
        r" bgp log-neighbor-changes",
        r" (no )?bgp ebgp-requires-policy",
        r" bgp bestpath as-path multipath-relax",
        r" timers bgp \d+ \d+",
        r" neighbor NODES peer-group",
        r" neighbor NODES remote-as external",
        r" neighbor NODES timers \d+ \d+",
        r" neighbor NODES timers connect \d+",
        r" bgp listen range \d+\.\d+\.\d+\.\d+/\d+ peer-group NODES",
        r" address-family ipv4 unicast",
        r"  neighbor NODES activate",
        r"  maximum-paths \d+",
        r" exit-address-family",
        r"exit",
    )
)


def spec_for(case: dict[str, Any], **changes: Any) -> FrrRouterSpec:
    config = parse_config(case["config"], case["stack"])
    spec = frr_spec(config, plan(config), case["router"])
    return dataclasses.replace(spec, **changes) if changes else spec


def vtysh_check(tmp_path: Path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    """`vtysh -C -f <file>`: FRR parses the file as it would at boot, and exits non-zero on any error.

    --config_dir points at a directory holding only the project's vtysh.conf, so the system's
    /etc/frr is never read.
    """
    if shutil.which("vtysh") is None:
        pytest.skip("vtysh is not installed (Debian: apt-get install frr); FRR cannot parse the config here")
    confdir = tmp_path / "vtysh"
    confdir.mkdir(exist_ok=True)
    (confdir / "vtysh.conf").write_text(render_frr_files(spec_for(CASES["defaults"]))["vtysh.conf"])
    path = tmp_path / name
    path.write_text(text)
    return subprocess.run(
        ["vtysh", "--config_dir", str(confdir), "-C", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# --- golden files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_frr_conf_matches_golden(name: str) -> None:
    rendered = render_frr_files(spec_for(CASES[name]))["frr.conf"]
    golden = GOLDEN / f"{name}.conf"
    assert golden.is_file(), f"{golden} is missing; create it with tests/golden/frr/regenerate.py"
    assert rendered == golden.read_text(), (
        f"frr.conf for {name!r} differs from {golden} (a deliberate change: tests/golden/frr/regenerate.py)"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_configs_parse_in_frr(name: str, tmp_path: Path) -> None:
    result = vtysh_check(tmp_path, f"{name}.conf", (GOLDEN / f"{name}.conf").read_text())
    assert result.returncode == 0, result.stdout + result.stderr


def test_policy_variant_parses_in_frr(tmp_path: Path) -> None:
    text = render_frr_files(spec_for(CASES["defaults"], ebgp_requires_policy=True))["frr.conf"]
    result = vtysh_check(tmp_path, "policy.conf", text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_vtysh_catches_a_broken_config(tmp_path: Path) -> None:
    """The parse check above can fail: a misspelt command is rejected."""
    text = render_frr_files(spec_for(CASES["defaults"]))["frr.conf"].replace("maximum-paths", "maximal-paths")
    result = vtysh_check(tmp_path, "broken.conf", text)
    assert result.returncode != 0
    assert "maximal-paths" in result.stdout + result.stderr


@pytest.mark.parametrize("policy", [False, True])
@pytest.mark.parametrize("name", sorted(CASES))
def test_only_commands_both_frr_versions_accept(name: str, policy: bool) -> None:
    text = render_frr_files(spec_for(CASES[name], ebgp_requires_policy=policy))["frr.conf"]
    unchecked = [
        line for line in text.splitlines() if line and not any(p.fullmatch(line) for p in BOTH_VERSIONS)
    ]
    assert not unchecked, f"lines not known to parse in both FRR 8.4 and 10.7: {unchecked}"


# --- what the config says ---------------------------------------------------------------------


def test_defaults_peer_the_underlay_as_external_nodes() -> None:
    config = parse_config({"mode": "bgp"}, "bgp")
    addresses = plan(config)
    spec = frr_spec(config, addresses, 0)
    text = render_frr_files(spec)["frr.conf"]
    assert spec.router_id == addresses.router_ips[0]
    assert spec.listen_range == config.underlay
    assert f"router bgp {config.bgp.router_asn if config.bgp else None}\n" in text
    assert f" bgp router-id {addresses.router_ips[0]}\n" in text
    assert f" bgp listen range {config.underlay} peer-group NODES\n" in text
    assert " neighbor NODES remote-as external\n" in text
    assert " no bgp ebgp-requires-policy\n" in text
    assert " timers bgp 3 9\n" in text
    assert "multipath-relax" not in text
    assert "  maximum-paths 8\n" in text


def test_differing_node_asns_relax_the_as_path() -> None:
    text = render_frr_files(spec_for(CASES["node-asns-differ"]))["frr.conf"]
    assert " bgp bestpath as-path multipath-relax\n" in text


def test_maximum_paths_follows_the_config() -> None:
    text = render_frr_files(spec_for(CASES["maximum-paths-1"]))["frr.conf"]
    assert "  maximum-paths 1\n" in text and "maximum-paths 8" not in text


def test_policy_switch_keeps_rfc8212() -> None:
    text = render_frr_files(spec_for(CASES["defaults"], ebgp_requires_policy=True))["frr.conf"]
    assert " bgp ebgp-requires-policy\n" in text
    assert "no bgp ebgp-requires-policy" not in text


def test_second_router_gets_its_own_address_and_name() -> None:
    config = parse_config({"mode": "bgp", "bgp": {"routers": 2}}, "lab-bgp")
    addresses = plan(config)
    first, second = frr_spec(config, addresses, 0), frr_spec(config, addresses, 1)
    assert (first.router_id, second.router_id) == addresses.router_ips
    assert first.hostname != second.hostname
    assert f"hostname {second.hostname}\n" in render_frr_files(second)["frr.conf"]


# --- the other files ------------------------------------------------------------------------------


def test_daemons_file_starts_bgpd_and_nothing_else() -> None:
    daemons = parse_daemons_file(render_frr_files(spec_for(CASES["defaults"]))["daemons"])
    enabled = {name for name, value in daemons.items() if name in FRR_DAEMONS and value != "no"}
    assert enabled == {"zebra", "bgpd"}
    assert daemons["vtysh_enable"] == "yes"
    unknown = {n for n in daemons if n not in FRR_DAEMONS and n.removesuffix("_options") not in FRR_DAEMONS}
    assert unknown == {"vtysh_enable"}, f"settings FRR's init does not know: {unknown}"
    assert [d for d, _ in daemons_to_start(daemons)] == ["zebra", "bgpd"]


def test_daemons_parser_reads_shell_assignments() -> None:
    parsed = parse_daemons_file('# comment\nbgpd=no\nzebra_options="  -A 127.0.0.1 -s 90000000"\n\n')
    assert parsed == {"bgpd": "no", "zebra_options": "  -A 127.0.0.1 -s 90000000"}
    assert daemons_to_start(parsed) == [("zebra", ["-A", "127.0.0.1", "-s", "90000000"])]


def test_vtysh_conf_uses_the_integrated_config(tmp_path: Path) -> None:
    text = render_frr_files(spec_for(CASES["defaults"]))["vtysh.conf"]
    assert "service integrated-vtysh-config" in text.splitlines()
    result = vtysh_check(tmp_path, "vtysh-as-input.conf", text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_file_is_rendered() -> None:
    files = render_frr_files(spec_for(CASES["defaults"]))
    assert set(files) == {"frr.conf", "daemons", "vtysh.conf"}
    for name, text in files.items():
        assert text.endswith("\n"), name
        assert "{{" not in text and "{%" not in text and "None" not in text, name


# --- refusals -------------------------------------------------------------------------------------


def test_undefined_template_values_are_errors() -> None:
    """StrictUndefined: a field the template needs but the spec lacks fails the render."""
    spec = spec_for(CASES["defaults"])
    partial = types.SimpleNamespace(
        **{k: v for k, v in dataclasses.asdict(spec).items() if k != "maximum_paths"}
    )
    partial.multipath_relax = False
    with pytest.raises(jinja2.UndefinedError, match="maximum_paths"):
        render_frr_files(cast(FrrRouterSpec, partial))


def test_only_bgp_stacks_have_a_router() -> None:
    config = parse_config({"mode": "static"}, "static")
    with pytest.raises(ValueError, match="not bgp"):
        frr_spec(config, plan(config), 0)


def test_router_index_must_exist() -> None:
    config = parse_config({"mode": "bgp"}, "bgp")
    with pytest.raises(IndexError, match="router index 1"):
        frr_spec(config, plan(config), 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"router_id": "10.0.0.1"}, "outside the listen range"),
        ({"asn": 65001}, "eBGP"),
        ({"maximum_paths": 0}, "maximum-paths"),
        ({"hold": 5}, "hold"),
    ],
)
def test_spec_refuses_what_frr_would_not_do(changes: dict[str, Any], message: str) -> None:
    spec = spec_for(CASES["defaults"])
    if "router_id" in changes:
        changes = {"router_id": type(spec.router_id)(changes["router_id"])}
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(spec, **changes)


# --- reading FRR's answers (shapes as FRR 8.4 prints them; 10.7 keys peers the same way) ----------------

SUMMARY = {
    "ipv4Unicast": {
        "routerId": "172.31.5.254",
        "as": 65000,
        "peers": {
            "172.31.5.2": {"dynamicPeer": True, "remoteAs": 65001, "state": "Established"},
            "*172.31.5.3": {"remoteAs": 65001, "state": "Established"},
            "172.31.5.4": {"dynamicPeer": True, "remoteAs": 65001, "state": "Active"},
        },
    }
}
ROUTES = {
    "10.99.0.1/32": [
        {
            "prefix": "10.99.0.1/32",
            "protocol": "bgp",
            "selected": True,
            "installed": True,
            "nexthops": [
                {"ip": "172.31.5.2", "fib": True, "active": True},
                {"ip": "172.31.5.3", "fib": True, "active": True},
                {"ip": "172.31.5.4", "active": False},
            ],
        }
    ],
    "10.10.0.0/27": [{"prefix": "10.10.0.0/27", "protocol": "kernel", "selected": True, "nexthops": []}],
}


def test_peer_states_read_plain_and_starred_keys() -> None:
    assert frr_peer_states(SUMMARY) == {
        "172.31.5.2": "Established",
        "172.31.5.3": "Established",
        "172.31.5.4": "Active",
    }
    assert frr_peer_states({}) == {}  # FRR prints {} when no neighbour exists at all
    with pytest.raises(parsers.ParseError):
        frr_peer_states([])


def test_route_nexthops_count_only_selected_bgp_and_active() -> None:
    chosen, hops = frr_route_nexthops(ROUTES, ipaddress.IPv4Network("10.99.0.1/32"))
    assert len(chosen) == 1 and hops == ["172.31.5.2", "172.31.5.3"]
    assert frr_route_nexthops(ROUTES, ipaddress.IPv4Network("10.10.0.0/27")) == ([], [])
    assert frr_route_nexthops({}, ipaddress.IPv4Network("10.10.0.32/27")) == ([], [])


def test_kernel_nexthops_read_every_shape() -> None:
    multipath = json.dumps(
        [
            {
                "dst": "10.99.0.1",
                "nhid": 11,
                "protocol": "bgp",
                "nexthops": [
                    {"gateway": "172.31.5.2", "dev": "eth0"},
                    {"gateway": "172.31.5.3", "dev": "eth0"},
                ],
            }
        ]
    )
    assert kernel_nexthops(multipath) == ["172.31.5.2", "172.31.5.3"]
    single = json.dumps([{"dst": "10.99.0.1", "gateway": "172.31.5.4", "dev": "eth0"}])
    assert kernel_nexthops(single) == ["172.31.5.4"]
    assert kernel_nexthops("[]") == []
    # nexthop_compat_mode=0: only the object id; its group is looked up
    objects = {
        30: [{"id": 30, "group": [{"id": 21}, {"id": 22}]}],
        21: [{"id": 21, "gateway": "172.31.5.2", "dev": "eth0"}],
        22: [{"id": 22, "gateway": "172.31.5.3", "dev": "eth0"}],
    }
    only_id = json.dumps([{"dst": "10.99.0.1", "nhid": 30, "protocol": "bgp"}])
    assert kernel_nexthops(only_id, lambda nhid: json.dumps(objects[nhid])) == ["172.31.5.2", "172.31.5.3"]
    with pytest.raises(parsers.ParseError):
        kernel_nexthops("Error: any valid prefix is expected")
