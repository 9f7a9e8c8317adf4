"""Hostile config values: each is rejected by validation, or reaches a shell as exactly one argument.

The program never splices a value into command text: commands are fixed scripts that read
values from the environment and quote them. So for any accepted config, (1) every command text
is one of the project's scripts, unchanged, and (2) every value a script uses as an argument is
a single shell word (shlex.split gives it back whole), with route lines made only of the
characters the route scripts accept.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mockstack import PROJECT, evaluate, stack_config

from lab.config import LabConfigError, parse_config
from lab.scripts import SCRIPTS

SHELLISH = st.text(alphabet=st.sampled_from(list("abz09-._/:@ ;|&$`'\"\\\n\t()<>*?!#~{}[]=,%")), max_size=40)
HOSTILE = st.one_of(
    SHELLISH,
    st.sampled_from(
        [
            "lab;rm -rf /",
            "$(reboot)",
            "`id`",
            "lab\nkind delete cluster --name other",
            "10.10.0.0/16 via 1.2.3.4; touch /tmp/x",
            "-rf",
            "--name=other",
            "172.30.4.0/24 ",
            " lab",
            "la b",
        ]
    ),
    st.text(max_size=20),
)
SCRIPT_TEXTS = {p.read_text() for p in SCRIPTS.rglob("*.sh")}
# Values a script splits on purpose: route lines and "node=cidr" pairs (their scripts check each word).
MULTI_WORD = {"LAB_ROUTES", "LAB_POD_CIDRS", "LAB_CRDS", "LAB_TOPOLOGY"}
ROUTE_WORD = set("0123456789abcdefghijklmnopqrstuvwxyz./= -\n")

KEYS: dict[str, Any] = {
    "clusterName": lambda v: {"clusterName": v},
    "nodeImage": lambda v: {"nodeImage": v},
    "ciliumVersion": lambda v: {"ciliumVersion": v},
    "underlaySubnet": lambda v: {"underlaySubnet": v},
    "podCidr": lambda v: {"podCidr": v},
    "serviceCidr": lambda v: {"serviceCidr": v},
    "verify.rerun": lambda v: {"verify": {"enabled": True, "rerun": v}},
    "staticRoutes.dest": lambda v: {
        "staticRoutes": [{"node": "static-worker", "dest": v, "via": "172.30.4.3"}]
    },
    "staticRoutes.via": lambda v: {
        "staticRoutes": [{"node": "static-worker", "dest": "192.168.9.0/24", "via": v}]
    },
    "staticRoutes.node": lambda v: {
        "staticRoutes": [{"node": v, "dest": "192.168.9.0/24", "via": "172.30.4.3"}]
    },
}


def assert_single_arguments(raw: dict[str, Any]) -> None:
    config = {f"{PROJECT}:{k}": v for k, v in {**_base(), **raw}.items()}
    ev = evaluate("static", config)
    for r in ev.by_type("command:local:Command"):
        for field in ("create", "update", "delete"):
            if r.inputs.get(field):
                assert r.inputs[field] in SCRIPT_TEXTS, f"{r.name}.{field} is not a fixed script"
        for name, value in r.inputs.get("environment", {}).items():
            if name in MULTI_WORD:
                if name in ("LAB_ROUTES", "LAB_POD_CIDRS"):
                    assert set(value) <= ROUTE_WORD, f"{r.name} {name}={value!r}"
                continue
            assert shlex.split(value) == [value], f"{r.name} {name}={value!r} is not one shell word"


def _base() -> dict[str, Any]:
    return {k.split(":", 1)[1]: v for k, v in stack_config("static").items() if k.startswith(f"{PROJECT}:")}


@pytest.mark.parametrize("key", sorted(KEYS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=HOSTILE)
def test_rejected_or_one_argument(key: str, value: str) -> None:
    raw = KEYS[key](value)
    try:
        parse_config({**_base(), **raw}, "static")
    except LabConfigError as err:
        # The rejection names the key (directly, or as the other side of an overlap).
        assert f"{PROJECT}:{key.split('.', maxsplit=1)[0]}" in str(err), str(err)
        return
    assert_single_arguments(raw)


def test_accepted_values_are_checked_too() -> None:
    """The property above is not vacuous: valid values do reach the commands and pass."""
    assert_single_arguments(
        {
            "clusterName": "lab-x",
            "staticRoutes": [{"node": "lab-x-worker", "dest": "192.168.9.0/24", "via": "172.30.4.3"}],
        }
    )
