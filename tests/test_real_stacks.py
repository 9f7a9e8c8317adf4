"""The lab's own stacks for real: `make preview` of every stack, and a cluster name taken outside
the state, through the real Pulumi engine, the command and docker plugins this machine builds,
the local Docker engine and the offline supply (lab/offline.py). The labs' `make up` / `preview`
/ `destroy` are in tests/test_real_labs.py, with their checks on.

Everything runs as a user runs it: the README's make targets, in a copy of the project (creating
a stack writes its `encryptionsalt` into the stack file), on a file backend of its own. The labs
here are stack files a user could write (their own names and subnets, `verify.enabled: false`),
so they never touch a lab of the shipped stacks on the same host. `.ci/run` sets
LAB_REAL_TIER=required: there a missing piece fails instead of skipping.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
import yaml
from mockstack import evaluate, stack_config
from real_lab import (
    DIAGNOSTIC,
    KIND_CLUSTER_LABEL,
    SHIPPED,
    Lab,
    diagnostics,
    open_lab,
    pulumi_part,
    run,
    toolchain_path,
)

from lab import kind_config, offline


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from open_lab(tmp_path_factory)


# --- make preview of every shipped stack ----------------------------------------------------------


@pytest.mark.parametrize("stack", SHIPPED)
def test_make_preview_shows_every_declared_resource_and_no_diagnostic(
    lab: Lab, stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = lab.ok("preview", f"STACK={stack}")
    pulumi = pulumi_part(said)
    assert "Diagnostics:" not in pulumi and not DIAGNOSTIC.search(pulumi), pulumi
    monkeypatch.setenv(offline.ENV, str(lab.manifest))
    # The mocks name a top-level component's parent type (the stack) in its URN; the engine does not.
    declared = [
        r.urn.replace("::pulumi:pulumi:Stack$", "::")
        for r in evaluate(stack, stack_config(stack))
        if r.type != "pulumi:providers:kubernetes"
    ]
    missing = [urn for urn in declared if f"[urn={urn}]" not in pulumi]
    assert declared and missing == [], f"not in the preview: {missing}\n{pulumi}"


def test_a_cluster_name_taken_outside_the_state_fails_with_the_scripts_fix(lab: Lab) -> None:
    """A kind cluster someone made by hand, on a network of its own, under the name a stack asks
    for: `make up` stops at the create script, which names the cluster and the fix, and adopts
    nothing. (A cluster on the lab's own network is stopped earlier, by Docker: the network name.)"""
    taken, network = "cdltest-handmade", "cdltest-handmade-net"
    tools = {**lab.env, **toolchain_path(lab)}
    node_image = json.loads(lab.manifest.read_text())["nodeImage"]
    made = lab.docker("network", "create", "--subnet", "172.30.214.0/24", network)
    assert made.returncode == 0, made.stderr
    try:
        for _attempt in range(2):  # kind gives a node's systemd little time to boot on a busy 2-core host
            created = subprocess.run(
                ["kind", "create", "cluster", "--config", "-", "--wait", "0s"],
                input=yaml.safe_dump(kind_config.smoke_cluster(taken, node_image, workers=0)),
                env={**tools, "KIND_EXPERIMENTAL_DOCKER_NETWORK": network},
                cwd=lab.root,
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
            if created.returncode == 0:
                break
        assert created.returncode == 0, created.stderr
        lab.write_stack(
            "cdltest-taken",
            "overlay",
            clusterName=taken,
            underlaySubnet="172.30.213.0/24",
            verify={"enabled": False},
        )
        lab.created.append("cdltest-taken")
        failed = lab.make("up", "STACK=cdltest-taken")
        said = diagnostics(failed.stdout)
        assert failed.returncode != 0, said
        assert f"a kind cluster named {taken} already exists outside this stack's state" in said, said
        assert f"fix: kind delete cluster --name {taken}" in said, said
        lab.ok("destroy", "STACK=cdltest-taken")
        lab.created.remove("cdltest-taken")
        nodes = lab.docker("ps", "-q", "--filter", f"label={KIND_CLUSTER_LABEL}={taken}").stdout.split()
        assert len(nodes) == 1  # the hand-made cluster was not touched
    finally:
        run(["kind", "delete", "cluster", "--name", taken], tools, lab.root, 300)
        lab.docker("network", "rm", network)
