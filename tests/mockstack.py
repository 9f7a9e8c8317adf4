"""Evaluate the real Pulumi program under recording mocks, from a real stack file.

Every registration is recorded with its inputs *and* its options (parent, dependencies,
deletedWith, replaceOnChanges, secrets), which the stock MockMonitor drops. A tiny fake Docker
stands in for the outside world: the network and kind cluster the program asks for "exist"
with deterministic container IPs, and the commands that inspect them answer accordingly.
"""

from __future__ import annotations

import ipaddress
import json
import runpy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
FAKE_TOKEN = "fake-kubeconfig-token-"  # appears only inside the fake kubeconfig


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    raw: Any  # the wire form (JSON), where secrets are still marked
    parent: str
    dependencies: list[str]
    deleted_with: str
    replace_on_changes: list[str]
    delete_before_replace: bool
    provider: str
    additional_secret_outputs: list[str]
    custom: bool


@dataclass
class Evaluation:
    stack: str
    registrations: list[Registration] = field(default_factory=list)
    outputs_raw: Any = None

    def __iter__(self) -> Iterator[Registration]:
        return iter(self.registrations)

    def by_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == typ]

    def one(self, typ: str, name_suffix: str = "") -> Registration:
        found = [r for r in self.by_type(typ) if r.name.endswith(name_suffix)]
        assert len(found) == 1, f"expected one {typ} named *{name_suffix}, got {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)

    @property
    def outputs(self) -> dict[str, Any]:
        """Stack outputs in wire form (a secret is a dict carrying the secret signature)."""
        return dict(self.outputs_raw or {})


class FakeDocker:
    """Just enough Docker for the program: networks and the kind nodes attached to them."""

    def __init__(self) -> None:
        self.networks: dict[str, ipaddress.IPv4Network] = {}
        self.containers: dict[str, list[tuple[str, str]]] = {}  # network -> [(name, ip/len)]

    def create_network(self, inputs: Mapping[str, Any]) -> None:
        ipam = inputs["ipamConfigs"][0]
        self.networks[inputs["name"]] = ipaddress.IPv4Network(ipam["ipRange"])

    def create_kind_cluster(self, inputs: Mapping[str, Any]) -> None:
        env = inputs["environment"]
        kind_config = yaml.safe_load(inputs["stdin"])
        cluster = kind_config["name"]
        names = [f"{cluster}-control-plane"]
        workers = [n for n in kind_config["nodes"] if n["role"] == "worker"]
        names += [f"{cluster}-worker{'' if i == 1 else i}" for i in range(1, len(workers) + 1)]
        node_range = self.networks[env["LAB_NETWORK"]]
        prefix = node_range.prefixlen - 1
        # Like Docker: .1 is the gateway, nodes follow in creation order.
        self.containers[env["LAB_NETWORK"]] = [
            (name, f"{node_range.network_address + 2 + i}/{prefix}") for i, name in enumerate(names)
        ]

    def inspect(self, network: str) -> str:
        return json.dumps(
            {
                f"c{i:02d}": {"Name": n, "IPv4Address": ip}
                for i, (n, ip) in enumerate(self.containers[network])
            }
        )


class RecordingMocks(pulumi_mocks.Mocks):
    def __init__(self) -> None:
        self.docker = FakeDocker()

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "docker:index/network:Network":
            self.docker.create_network(args.inputs)
        elif args.typ == "command:local:Command":
            state["stdout"] = self._command_stdout(args)
            state["stderr"] = ""
        return f"{args.name}-id", state

    def _command_stdout(self, args: pulumi_mocks.MockResourceArgs) -> str:
        env = args.inputs.get("environment", {})
        create = args.inputs.get("create", "")
        if "kind create cluster" in create:
            self.docker.create_kind_cluster(args.inputs)
        elif "docker network inspect" in create:
            return self.docker.inspect(env["LAB_NETWORK"])
        elif "kind get kubeconfig" in create:
            return (
                f"apiVersion: v1\nkind: Config\nusers:\n- user: {{token: {FAKE_TOKEN}{env['LAB_CLUSTER']}}}\n"
            )
        return ""

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: RecordingMocks, evaluation: Evaluation) -> None:
        super().__init__(mocks)
        self.evaluation = evaluation

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            registered = self.resources[response.urn]
            self.evaluation.registrations.append(
                Registration(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    inputs=_plain(pulumi.runtime.rpc.deserialize_properties(request.object)),
                    raw=json_format.MessageToDict(request.object),
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    deleted_with=request.deletedWith,
                    replace_on_changes=list(request.replaceOnChanges),
                    delete_before_replace=request.deleteBeforeReplace,
                    provider=request.provider,
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    custom=request.custom,
                )
            )
            del registered
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn.endswith("::pulumi:pulumi:Stack::" + f"{PROJECT}-{self.evaluation.stack}"):
            self.evaluation.outputs_raw = json_format.MessageToDict(request.outputs)
        return super().RegisterResourceOutputs(request)


def _plain(value: Any) -> Any:
    """Drop secret wrappers so tests can compare input values."""
    if isinstance(value, dict):
        if value.get("4dabf18193072939515e22adb298388d") == SECRET_SIG:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def stack_file(stack: str) -> Path:
    return ROOT / "stacks" / f"Pulumi.{stack}.yaml"


def stack_config(stack: str) -> dict[str, Any]:
    """The `config:` block of a real stack file, as written."""
    return dict(yaml.safe_load(stack_file(stack).read_text())["config"])


def engine_config(config: Mapping[str, Any]) -> dict[str, str]:
    """What the engine hands a program: every value as text, structured values as JSON."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    return {k: text(v) for k, v in config.items()}


def with_project_keys(config: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a stack config with project keys changed (None removes a key)."""
    out = dict(config)
    for k, v in changes.items():
        full = f"{PROJECT}:{k}"
        if v is None:
            out.pop(full, None)
        else:
            out[full] = v
    return out


def evaluate(
    stack: str, config: Mapping[str, Any] | None = None, evaluation: Evaluation | None = None
) -> Evaluation:
    """Run __main__.py for `stack` (its stack file unless `config` is given) under recording mocks.

    Pass `evaluation` to keep what was registered even when the program raises.
    """
    evaluation = evaluation if evaluation is not None else Evaluation(stack=stack)
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks, evaluation)
    set_all_config(engine_config(stack_config(stack) if config is None else config))
    pulumi_settings.configure(
        pulumi_mocks.MockSettings(
            monitor=monitor,
            monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
            engine=pulumi_mocks.MockEngine(None),
            project=PROJECT,
            stack=stack,
            dry_run=False,
            organization="organization",
            callbacks=None,
        )
    )
    pulumi_settings.ROOT.set(None)

    def program() -> None:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    _sync_await(run_in_stack(program))
    return evaluation


def changes(before: Evaluation, after: Evaluation) -> dict[tuple[str, str], str]:
    """What `pulumi preview` would report between two evaluations, by (type, name).

    "update" where inputs differ, "replace" where a differing input is covered by the
    resource's replaceOnChanges (or its triggers), "create"/"delete" for new/removed ones.
    """
    old = {(r.type, r.name): r for r in before}
    new = {(r.type, r.name): r for r in after}
    out: dict[tuple[str, str], str] = {}
    for k in old.keys() - new.keys():
        out[k] = "delete"
    for k in new.keys() - old.keys():
        out[k] = "create"
    for k in old.keys() & new.keys():
        a, b = old[k], new[k]
        changed = {p for p in a.inputs.keys() | b.inputs.keys() if a.inputs.get(p) != b.inputs.get(p)}
        if not changed:
            continue
        replace_on = set(b.replace_on_changes)
        replaced = "*" in replace_on or any(p in replace_on or f"{p}[*]" in replace_on for p in changed)
        out[k] = "replace" if replaced else "update"
    return out
