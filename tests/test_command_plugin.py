"""The project's own `command` plugin (supply/toolchain/command) keeps pulumi-command 1.2.1's contract.

Every behaviour of docs/command-plugin.md is driven through the REAL engine: the `pulumi` CLI,
language host and PULUMI_HOME that `make toolchain` built (with the plugin it installed there), the
venv's unchanged pulumi_command 1.2.1 SDK, throwaway programs in tmp dirs, a file backend and the
empty passphrase; no network. What the commands did is read back from the state (`stack export`),
the engine's JSON event stream (`--json`) and files the commands append to. Behaviours that can
share a stack do: a module-scoped fixture runs each stack's preview/up/refresh/destroy once and the
tests assert on what it recorded. Skipped, saying to run `make toolchain`, where the toolchain with
the plugin is not built. COMMAND_PLUGIN_TOOLCHAIN may name another directory laid out like a built
toolchain (bin/, pulumi-home/), to try a plugin build before `make toolchain` makes it official.

The Go unit tests of the plugin's pure parts run here too (`go test` in a copy of the module).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from supply import toolchain

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
MODULE = REPO / "supply" / "toolchain" / "command"
TIMEOUT = 300  # seconds for one pulumi command; each takes a few here
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # how the engine's JSON shows an unknown value
COMMAND = "command:local:Command"
FLAGS = ("--non-interactive", "--color", "never")


@pytest.fixture(scope="module")
def key_dir() -> Path:
    """The built toolchain holding the plugin; skip (say what to build) where there is none."""
    override = os.environ.get("COMMAND_PLUGIN_TOOLCHAIN")
    if override:
        found: Path | None = Path(override)
    else:
        try:
            found = toolchain.current_dir(os.environ)
        except (toolchain.ToolchainError, OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(f"cannot look up the Pulumi toolchain ({exc}): run `make toolchain` (needs Go)")
    if found is None:
        pytest.skip("no Pulumi toolchain is built for the current recipe: run `make toolchain`")
    if not plugin_binary(found).is_file():
        pytest.skip(f"the toolchain in {found} has no command 1.2.1 plugin: run `make toolchain`")
    if not VENV_PYTHON.exists():
        pytest.skip(f"no {VENV_PYTHON} for the language host: run `make venv`")
    return found


def plugin_binary(key_dir: Path) -> Path:
    return key_dir / "pulumi-home" / "plugins" / "resource-command-v1.2.1" / "pulumi-resource-command"


@dataclass
class Run:
    """One finished pulumi command: its exit status, its output, its JSON events and how long it took."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def said(self) -> str:
        return self.stdout + self.stderr

    def diagnostics(self, urn_suffix: str, *, ephemeral: bool) -> list[dict[str, Any]]:
        """The diagnostic events of one resource (its URN ends with ::name), ephemeral or not."""
        found = []
        for event in self.events:
            diag = event.get("diagnosticEvent")
            if (
                diag
                and diag.get("urn", "").endswith(f"::{urn_suffix}")
                and bool(diag.get("ephemeral")) == ephemeral
            ):
                found.append(diag)
        return found

    def status_lines(self, name: str) -> list[str]:
        """The ephemeral status messages a resource's command logged, one per line it printed."""
        return [d["message"].removesuffix("\n") for d in self.diagnostics(name, ephemeral=True)]

    def errors(self, name: str) -> str:
        return "".join(
            d["message"] for d in self.diagnostics(name, ephemeral=False) if d["severity"] == "error"
        )

    def outputs(self, name: str) -> dict[str, Any]:
        """The outputs the engine reported for a resource (in a preview: what the plugin answered)."""
        found: dict[str, Any] | None = None
        for event in self.events:
            out = event.get("resOutputsEvent")
            if out and out["metadata"]["urn"].endswith(f"::{name}"):
                found = out["metadata"]["new"]["outputs"]
        assert found is not None, f"no outputs event for {name}"
        return found

    def steps(self, name: str) -> list[dict[str, Any]]:
        """The steps the engine took or planned for a resource, in order (a replace has several)."""
        found = [
            pre["metadata"]
            for event in self.events
            if (pre := event.get("resourcePreEvent")) and pre["metadata"]["urn"].endswith(f"::{name}")
        ]
        assert found, f"no step for {name}"
        return found

    def step(self, name: str) -> dict[str, Any]:
        [only] = self.steps(name)
        return only


@dataclass(frozen=True)
class Stack:
    """A throwaway program's stack: the built `pulumi` in its directory, on its own file backend."""

    key_dir: Path
    project: Path
    name: str
    env: Mapping[str, str]

    def run(self, *args: str, extra: Mapping[str, str] | None = None, events: bool = False) -> Run:
        env = {**self.env, **(extra or {})}
        argv = [str(self.key_dir / "bin" / "pulumi"), *args, "--stack", self.name, *FLAGS]
        if events:
            argv.append("--json")
            env["PULUMI_ENABLE_STREAMING_JSON_PREVIEW"] = "true"
        start = time.monotonic()
        # Its own session, so a hung run is ended with everything it started (plugin, language host).
        with subprocess.Popen(
            argv,
            cwd=self.project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as proc:
            try:
                out, err = proc.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, err = proc.communicate()
                pytest.fail(f"pulumi {' '.join(args)} hung for {TIMEOUT} s:\n{out}{err}")
        run = Run(proc.returncode, out, err, time.monotonic() - start)
        if events:
            run.events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return run

    def ok(self, *args: str, extra: Mapping[str, str] | None = None, events: bool = False) -> Run:
        run = self.run(*args, extra=extra, events=events)
        assert run.returncode == 0, f"pulumi {' '.join(args)} exited {run.returncode}:\n{run.said}"
        return run

    def resources(self) -> dict[str, dict[str, Any]]:
        """The stack's command resources by name, as `pulumi stack export` shows the state."""
        argv = [str(self.key_dir / "bin" / "pulumi"), "stack", "export", "--stack", self.name]
        done = subprocess.run(
            argv, cwd=self.project, env=dict(self.env), capture_output=True, text=True, check=True
        )
        state = json.loads(done.stdout)
        return {
            r["urn"].rsplit("::", 1)[1]: r
            for r in state["deployment"].get("resources") or []
            if r["type"] == COMMAND
        }


PULUMI_YAML = "name: {name}\nruntime: python\n"


def new_stack(key_dir: Path, root: Path, name: str, program: str, extra: Mapping[str, str]) -> Stack:
    """Write a program into root/name, give it a file backend in root/state and create its stack."""
    project = root / name
    project.mkdir()
    (project / "Pulumi.yaml").write_text(PULUMI_YAML.format(name=name))
    (project / "__main__.py").write_text(textwrap.dedent(program))
    (root / "state").mkdir(exist_ok=True)
    (root / "home").mkdir(exist_ok=True)
    env = {
        **toolchain.toolchain_env(key_dir, REPO, "/usr/bin:/bin"),
        "HOME": str(root / "home"),
        "LANG": "C.UTF-8",
        "PULUMI_BACKEND_URL": (root / "state").as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": "",
        # Only the plugin in the toolchain's PULUMI_HOME may answer, never one found on PATH.
        "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
        **extra,
    }
    stack = Stack(key_dir, project, "dev", env)
    subprocess.run(
        [str(key_dir / "bin" / "pulumi"), "stack", "init", "dev", "--secrets-provider", "passphrase", *FLAGS],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return stack


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def dead(pid: int) -> bool:
    """The process is gone (or a zombie nobody has reaped yet, which runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def assert_dies(pid: int, what: str, seconds: float = 10) -> None:
    """The process ends within `seconds`; if not, the test kills it (leaving nothing behind) and fails."""
    deadline = time.monotonic() + seconds
    while not dead(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"{what} (pid {pid}) survived")
        time.sleep(0.1)


def is_secret(value: object) -> bool:
    return isinstance(value, dict) and "4dabf18193072939515e22adb298388d" in value


def hide_secrets(value: Any) -> Any:
    """The value with each secret replaced by a marker: a state write re-encrypts with a new nonce."""
    if is_secret(value):
        return "[secret]"
    if isinstance(value, dict):
        return {k: hide_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [hide_secrets(v) for v in value]
    return value


# --- the lifecycle stack: preview, create, a no-op preview and refresh, updates/replaces, destroy ----

LIFECYCLE = """
    import os
    import pulumi
    from pulumi_command import local

    PHASE = os.environ["CDL_PHASE"]
    LOG = os.environ["CDL_LOG"]
    WORK = os.environ["CDL_WORK"]
    V = {"V": PHASE}


    def append(name, text):
        return f'echo "{text}" >> "{LOG}/{name}"'


    basic = local.Command("basic", create="printf 'out\\\\n\\\\n'; printf 'err\\\\n' >&2")
    local.Command("padded", create="printf ' padded \\\\t\\\\n'; printf 'cr\\\\r\\\\n' >&2")
    local.Command("chained", create=basic.stdout.apply(lambda s: f"echo {s.strip()}-again"))

    local.Command(
        "trig",
        triggers=[PHASE],
        environment=V,
        create=append("trig", "create $V"),
        update=append("trig", "update $V"),
        delete=append("trig", "delete $V"),
    )
    # The SDK adds replace_on_changes=["triggers[*]"], which makes the engine replace on its own; the
    # same resource registered without it shows that the plugin's Diff replaces too (as YAML programs need).
    pulumi.CustomResource(
        "command:local:Command",
        "rawtrig",
        {"triggers": [PHASE], "create": append("rawtrig", "create"), "update": append("rawtrig", "update"),
         "stdout": None, "stderr": None},
        opts=pulumi.ResourceOptions(version="1.2.1"),
    )
    local.Command(
        "upd",
        environment=V,
        create='echo "create-$V"',
        update='echo "update-$V prev=$PULUMI_COMMAND_STDOUT"',
    )
    local.Command("rerun", environment=V, create='echo "run-$V prev=${PULUMI_COMMAND_STDOUT-none}"')
    local.Command(
        "noprev",
        environment=V,
        add_previous_output_in_env=False,
        create='echo "run-$V prev=${PULUMI_COMMAND_STDOUT-none}"',
    )
    local.Command("delonly", create=append("delonly", "create"), delete=f"true {PHASE}")
    local.Command(
        "logonly",
        create=append("logonly", "create"),
        logging=None if PHASE == "1" else local.Logging.STDOUT,
    )
    local.Command(
        "envorder",
        environment={"CDL_OVERRIDDEN": "input", "PULUMI_COMMAND_STDOUT": "input", **V},
        create='echo "$CDL_FROM_PLUGIN $CDL_OVERRIDDEN $PULUMI_COMMAND_STDOUT"',
    )
    local.Command("interp", interpreter=["/bin/echo", "first"], create="a b  c")
    local.Command("pydir", interpreter=[os.environ["CDL_PYTHON"], "-c"], dir=WORK,
                  create="import os; print(os.getcwd())")
    local.Command("nodir", create="pwd")
    local.Command("stdin", stdin="line1\\nline2\\n", create="cat; echo end")
    local.Command("nostdin", create="cat; echo eof")
    local.Command("logall", create="echo LOGALL-out; echo LOGALL-err >&2")
    local.Command("logerr", logging=local.Logging.STDERR, create="echo LOGERR-out; echo LOGERR-err >&2")
    local.Command("lognone", logging=local.Logging.NONE, create="echo LOGNONE-out; echo LOGNONE-err >&2")
    local.Command(
        "long",
        create="head -c 100000 /dev/zero | tr '\\\\0' x; echo; echo after",
        opts=pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create="30s")),
    )
    local.Command(
        "secret",
        environment={"TOKEN": pulumi.Output.secret(os.environ["CDL_SECRET"])},
        create='echo "${#TOKEN} characters"',
    )
    local.Command(
        "files",
        dir=WORK,
        create="mkdir -p a/b && echo 1 > a/one.txt && echo 2 > a/b/two.txt && echo s > a/secret.txt",
        asset_paths=["a/**", "!**secret.*"],
        archive_paths=["a/*.txt"],
    )
    local.Command(
        "stored",
        interpreter=["/usr/bin/env", "CDL_VIA=interpreter", "/bin/sh", "-c"],
        dir=WORK,
        stdin="piped-in",
        environment=V,
        create='echo "made-$V"',
        delete='printf "%s|%s|%s|%s|%s\\\\n" "$V" "$PULUMI_COMMAND_STDOUT" "$(pwd)" "$(cat)" "$CDL_VIA"'
        + f' >> "{LOG}/stored"',
    )
"""


@dataclass
class Lifecycle:
    """What the lifecycle stack's commands did, recorded once for the tests below."""

    log: Path
    work: Path
    project: Path
    secret: str
    state_dir: Path
    preview1: Run
    logs_after_preview1: list[str]
    up1: Run
    state1: dict[str, dict[str, Any]]
    noop_preview: Run
    refresh: Run
    state_after_refresh: dict[str, dict[str, Any]]
    preview2: Run
    trig_after_preview2: list[str]
    up2: Run
    state2: dict[str, dict[str, Any]]
    destroy: Run
    state_after_destroy: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def lifecycle(key_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lifecycle]:
    root = tmp_path_factory.mktemp("lifecycle")
    log, work = root / "log", root / "work"
    log.mkdir()
    work.mkdir()
    secret = secrets.token_hex(16)
    env = {
        "CDL_LOG": str(log),
        "CDL_WORK": str(work),
        "CDL_PYTHON": str(VENV_PYTHON),
        "CDL_SECRET": secret,
        # The plugin's own environment, which `environment` entries override.
        "CDL_FROM_PLUGIN": "plugin",
        "CDL_OVERRIDDEN": "plugin",
    }
    stack = new_stack(key_dir, root, "lifecycle", LIFECYCLE, env)
    phase1, phase2 = {"CDL_PHASE": "1"}, {"CDL_PHASE": "2"}
    try:
        preview1 = stack.ok("preview", extra=phase1, events=True)
        logs_after_preview1 = sorted(p.name for p in log.iterdir())
        up1 = stack.ok("up", "--yes", "--skip-preview", extra=phase1, events=True)
        state1 = stack.resources()
        noop = stack.run("preview", "--expect-no-changes", "--diff", extra=phase1)
        refresh = stack.run("refresh", "--yes", "--expect-no-changes", extra=phase1)
        after_refresh = stack.resources()
        preview2 = stack.ok("preview", extra=phase2, events=True)
        trig_after_preview2 = lines(log / "trig")
        up2 = stack.ok("up", "--yes", "--skip-preview", extra=phase2, events=True)
        state2 = stack.resources()
        destroy = stack.run("destroy", "--yes", "--skip-preview", extra=phase2)
        after_destroy = stack.resources()
        yield Lifecycle(
            log=log,
            work=work,
            project=stack.project,
            secret=secret,
            state_dir=root / "state",
            preview1=preview1,
            logs_after_preview1=logs_after_preview1,
            up1=up1,
            state1=state1,
            noop_preview=noop,
            refresh=refresh,
            state_after_refresh=after_refresh,
            preview2=preview2,
            trig_after_preview2=trig_after_preview2,
            up2=up2,
            state2=state2,
            destroy=destroy,
            state_after_destroy=after_destroy,
        )
    finally:
        stack.run("destroy", "--yes", "--skip-preview", extra=phase2)
        stack.run("stack", "rm", "--yes", "--force")


def test_preview_runs_nothing_and_shows_stdout_and_stderr_unknown(lifecycle: Lifecycle) -> None:
    assert lifecycle.logs_after_preview1 == [], "a preview ran a command"
    for name in ("basic", "trig", "upd", "long", "files", "stored"):
        outputs = lifecycle.preview1.outputs(name)
        assert outputs["stdout"] == UNKNOWN and outputs["stderr"] == UNKNOWN, (name, outputs)
    # Mirrored inputs stay as they are, unknowns included: chained's create waits for basic's stdout.
    assert lifecycle.preview1.outputs("chained")["create"] == UNKNOWN
    assert lifecycle.preview1.outputs("basic")["create"] == "printf 'out\\n\\n'; printf 'err\\n' >&2"
    # The update's preview likewise: upd's stdout is unknown until the update runs.
    assert lifecycle.preview2.outputs("upd")["stdout"] == UNKNOWN
    assert lifecycle.trig_after_preview2 == ["create 1"], "the second preview ran a command"


def test_create_outputs_mirror_the_inputs_with_stdout_and_stderr_and_the_id_is_name_plus_8_hex(
    lifecycle: Lifecycle,
) -> None:
    basic = lifecycle.state1["basic"]
    assert re.fullmatch(r"basic[0-9a-f]{8}", basic["id"]), basic["id"]
    create = "printf 'out\\n\\n'; printf 'err\\n' >&2"
    assert basic["inputs"] == {"create": create}
    assert basic["outputs"] == {"create": create, "stdout": "out\n", "stderr": "err"}
    assert lifecycle.state1["chained"]["outputs"]["stdout"] == "out-again"
    ids = [r["id"] for r in lifecycle.state1.values()]
    assert len(set(ids)) == len(ids)


def test_one_trailing_newline_is_trimmed_not_whitespace(lifecycle: Lifecycle) -> None:
    assert lifecycle.state1["basic"]["outputs"]["stdout"] == "out\n"  # printed "out\n\n"
    padded = lifecycle.state1["padded"]["outputs"]
    assert padded["stdout"] == " padded \t" and padded["stderr"] == "cr\r"


def test_check_injects_no_default_so_nothing_differs_after_an_up(lifecycle: Lifecycle) -> None:
    for name, resource in lifecycle.state1.items():
        assert "addPreviousOutputInEnv" not in resource["inputs"] or name == "noprev", (name, resource)
        given = set(resource["inputs"])
        files = {"assets", "archive"} if name == "files" else set()
        assert set(resource["outputs"]) == given | {"stdout", "stderr"} | files, (name, resource["outputs"])
    assert lifecycle.state1["noprev"]["inputs"]["addPreviousOutputInEnv"] is False


def test_a_second_preview_shows_no_change(lifecycle: Lifecycle) -> None:
    assert lifecycle.noop_preview.returncode == 0, lifecycle.noop_preview.said
    unchanged = len(lifecycle.state1) + 1  # the commands and the stack
    assert re.search(rf"\b{unchanged} unchanged\b", lifecycle.noop_preview.said), lifecycle.noop_preview.said


def test_refresh_is_a_no_op(lifecycle: Lifecycle) -> None:
    """Read returns the state unchanged (the engine itself drops propertyDependencies on refresh)."""
    assert lifecycle.refresh.returncode == 0, lifecycle.refresh.said

    def kept(state: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[Any, ...]]:
        return {n: (r["id"], hide_secrets(r["inputs"]), hide_secrets(r["outputs"])) for n, r in state.items()}

    assert kept(lifecycle.state_after_refresh) == kept(lifecycle.state1)


def test_a_trigger_change_replaces_create_before_delete_even_with_update_set(lifecycle: Lifecycle) -> None:
    planned = lifecycle.preview2.steps("trig")
    assert [s["op"] for s in planned] == ["create-replacement", "replace", "delete-replaced"], planned
    assert planned[1]["detailedDiff"] == {
        "triggers[0]": {"diffKind": "update-replace", "inputDiff": True},
        "environment.V": {"diffKind": "update", "inputDiff": True},
    }
    assert lines(lifecycle.log / "trig")[:3] == ["create 1", "create 2", "delete 1"]
    assert lifecycle.state2["trig"]["id"] != lifecycle.state1["trig"]["id"]
    # Without the SDK's replace_on_changes the plugin's own Diff asks for the replacement.
    raw = lifecycle.preview2.steps("rawtrig")
    assert [s["op"] for s in raw] == ["create-replacement", "replace", "delete-replaced"], raw
    assert raw[1]["detailedDiff"] == {"triggers[0]": {"diffKind": "update-replace", "inputDiff": True}}
    assert lines(lifecycle.log / "rawtrig") == ["create", "create"]


def test_other_input_changes_update_in_place(lifecycle: Lifecycle) -> None:
    step = lifecycle.preview2.step("upd")
    assert step["op"] == "update"
    assert step["detailedDiff"] == {"environment.V": {"diffKind": "update", "inputDiff": True}}
    assert lifecycle.state2["upd"]["id"] == lifecycle.state1["upd"]["id"]


def test_update_runs_update_with_the_previous_stdout(lifecycle: Lifecycle) -> None:
    assert lifecycle.state1["upd"]["outputs"]["stdout"] == "create-1"
    assert lifecycle.state2["upd"]["outputs"]["stdout"] == "update-2 prev=create-1"


def test_update_without_update_runs_create_again_with_the_previous_stdout(lifecycle: Lifecycle) -> None:
    assert lifecycle.state1["rerun"]["outputs"]["stdout"] == "run-1 prev=none"
    assert lifecycle.state2["rerun"]["outputs"]["stdout"] == "run-2 prev=run-1 prev=none"
    # ... unless addPreviousOutputInEnv is false.
    assert lifecycle.state2["noprev"]["outputs"]["stdout"] == "run-2 prev=none"


def test_editing_only_delete_or_logging_reruns_create(lifecycle: Lifecycle) -> None:
    assert lifecycle.preview2.step("delonly")["op"] == "update"
    assert lifecycle.preview2.step("logonly")["op"] == "update"
    assert lines(lifecycle.log / "delonly") == ["create", "create"]
    assert lines(lifecycle.log / "logonly") == ["create", "create"]


def test_environment_order_plugin_then_entries_then_previous_outputs(lifecycle: Lifecycle) -> None:
    # On create there are no previous outputs: the `environment` entry wins over the plugin's own.
    assert lifecycle.state1["envorder"]["outputs"]["stdout"] == "plugin input input"
    # On update the previous stdout wins over the `environment` entry of the same name.
    assert lifecycle.state2["envorder"]["outputs"]["stdout"] == "plugin input plugin input input"


def test_interpreter_gets_the_command_as_one_last_argument_and_dir_is_the_cwd(lifecycle: Lifecycle) -> None:
    assert lifecycle.state1["interp"]["outputs"]["stdout"] == "first a b  c"
    assert lifecycle.state1["pydir"]["outputs"]["stdout"] == str(lifecycle.work.resolve())
    # Without dir the command runs where the plugin runs: the project directory.
    assert lifecycle.state1["nodir"]["outputs"]["stdout"] == str(lifecycle.project.resolve())


def test_stdin_is_attached_only_when_given(lifecycle: Lifecycle) -> None:
    assert lifecycle.state1["stdin"]["outputs"]["stdout"] == "line1\nline2\nend"
    assert lifecycle.state1["nostdin"]["outputs"]["stdout"] == "eof"  # the null device, not a hang


def test_logging_sends_the_chosen_streams_as_ephemeral_status_lines(lifecycle: Lifecycle) -> None:
    up = lifecycle.up1
    assert set(up.status_lines("logall")) == {"LOGALL-out", "LOGALL-err"}
    assert up.status_lines("logerr") == ["LOGERR-err"]
    assert up.status_lines("lognone") == []
    # Status lines only: none of it reaches the final diagnostics ...
    lasting = " ".join(
        d["message"] for e in up.events if (d := e.get("diagnosticEvent")) and not d.get("ephemeral")
    )
    assert "LOGALL" not in lasting and "LOGERR" not in lasting
    # ... and both streams are captured whatever `logging` says.
    for name, tag in (("logall", "LOGALL"), ("logerr", "LOGERR"), ("lognone", "LOGNONE")):
        outputs = lifecycle.state1[name]["outputs"]
        assert (outputs["stdout"], outputs["stderr"]) == (f"{tag}-out", f"{tag}-err")


def test_a_line_over_64_kib_is_drained(lifecycle: Lifecycle) -> None:
    assert lifecycle.state1["long"]["outputs"]["stdout"] == "x" * 100_000 + "\nafter"
    logged = lifecycle.up1.status_lines("long")
    assert logged[-1] == "after"
    assert logged[0].startswith("x" * 65536) and "more bytes of this line not logged" in logged[0]


def test_asset_and_archive_paths_return_the_files_they_select(lifecycle: Lifecycle) -> None:
    preview = lifecycle.preview1.outputs("files")
    assert preview["assets"] == UNKNOWN and preview["archive"] == UNKNOWN
    outputs = lifecycle.state1["files"]["outputs"]
    assert set(outputs["assets"]) == {"a/one.txt", "a/b/two.txt"}  # `**` crosses `/`, `!` excludes
    assert outputs["assets"]["a/one.txt"]["path"] == str(lifecycle.work / "a" / "one.txt")
    assert set(outputs["archive"]["assets"]) == {"a/one.txt", "a/secret.txt"}  # `*` stops at `/`


def test_secrets_stay_secret_in_the_state_and_outputs_are_not_made_secret(lifecycle: Lifecycle) -> None:
    resource = lifecycle.state1["secret"]
    assert is_secret(resource["inputs"]["environment"]["TOKEN"])
    assert is_secret(resource["outputs"]["environment"]["TOKEN"])
    assert resource["outputs"]["stdout"] == "32 characters"  # the command saw the plaintext
    files = [p for p in lifecycle.state_dir.rglob("*") if p.is_file()]
    assert files and not [p for p in files if lifecycle.secret.encode() in p.read_bytes()]
    assert lifecycle.secret not in lifecycle.up1.said


def test_delete_runs_with_the_stored_environment_dir_interpreter_stdin_and_outputs(
    lifecycle: Lifecycle,
) -> None:
    assert lifecycle.destroy.returncode == 0, lifecycle.destroy.said
    assert lifecycle.state_after_destroy == {}
    assert lines(lifecycle.log / "stored") == [f"2|made-2|{lifecycle.work.resolve()}|piped-in|interpreter"]
    assert lines(lifecycle.log / "trig")[3:] == ["delete 2"]


# --- the failures stack: what a failing create, update and delete leave -------------------------

FAILURES = """
    import os
    import pulumi
    from pulumi_command import local

    PHASE = os.environ["CDL_PHASE"]
    LOG = os.environ["CDL_LOG"]

    if PHASE == "1":
        local.Command("fail", create="echo out; echo boom >&2; exit 3")
        local.Command("quietfail", logging=local.Logging.NONE,
                      create="echo quiet-out; echo quiet-err >&2; exit 7")
        local.Command(
            "timeout",
            create=f"sh -c 'echo $$ > {LOG}/timeout.pid; exec sleep 60' & wait",
            opts=pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create="2s")),
        )
        local.Command("baddir", dir=f"{LOG}/missing", create="true")
        local.Command(
            "delfail",
            environment={"FLAG": f"{LOG}/flag"},
            create="echo keep",
            delete='if [ -e "$FLAG" ]; then echo cannot delete >&2; exit 4; fi',
        )
    local.Command("updfail", environment={"V": PHASE}, create='echo "v$V"', update='echo "nope-$V"; exit 5')
"""


@dataclass
class Failures:
    log: Path
    up1: Run
    state1: dict[str, dict[str, Any]]
    up2: Run
    state2: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def failures(key_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Failures]:
    root = tmp_path_factory.mktemp("failures")
    log = root / "log"
    log.mkdir()
    stack = new_stack(key_dir, root, "failures", FAILURES, {"CDL_LOG": str(log)})
    go_on = ("up", "--yes", "--skip-preview", "--continue-on-error")
    try:
        up1 = stack.run(*go_on, extra={"CDL_PHASE": "1"}, events=True)
        state1 = stack.resources()
        (log / "flag").touch()
        up2 = stack.run(*go_on, extra={"CDL_PHASE": "2"}, events=True)
        state2 = stack.resources()
        yield Failures(log, up1, state1, up2, state2)
    finally:
        (log / "flag").unlink(missing_ok=True)
        stack.run("destroy", "--yes", "--skip-preview", extra={"CDL_PHASE": "2"})
        stack.run("stack", "rm", "--yes", "--force")


def test_a_failed_create_reports_the_failure_text_and_leaves_no_state(failures: Failures) -> None:
    assert failures.up1.returncode != 0
    text = failures.up1.errors("fail")
    assert text.startswith('exit status 3: running "echo out; echo boom >&2; exit 3":\n'), text
    assert set(text.splitlines()[1:3]) == {"out", "boom"}, text
    assert "fail" not in failures.state1 and "quietfail" not in failures.state1
    assert {"delfail", "updfail"} <= set(failures.state1)


def test_the_failure_text_has_the_output_even_when_logging_is_none(failures: Failures) -> None:
    text = failures.up1.errors("quietfail")
    assert text.startswith("exit status 7: running "), text
    assert "quiet-out" in text and "quiet-err" in text
    assert failures.up1.status_lines("quietfail") == []


def test_a_missing_dir_is_an_error(failures: Failures) -> None:
    text = failures.up1.errors("baddir")
    assert "no such file or directory" in text and 'running "true"' in text, text


def test_custom_timeouts_kill_the_whole_process_group(failures: Failures) -> None:
    text = failures.up1.errors("timeout")
    assert "timed out after 2s" in text, text
    assert failures.up1.seconds < 45, "the timeout did not stop the 60 s command"
    assert_dies(int((failures.log / "timeout.pid").read_text()), "the timed-out command's grandchild")


def test_a_failed_update_keeps_the_old_state(failures: Failures) -> None:
    text = failures.up2.errors("updfail")
    assert text.startswith('exit status 5: running "echo \\"nope-$V\\"; exit 5":\nnope-2'), text
    old, kept = failures.state1["updfail"], failures.state2["updfail"]
    assert kept["outputs"]["stdout"] == "v1" and kept["inputs"] == old["inputs"]


def test_a_failed_delete_keeps_the_resource(failures: Failures) -> None:
    text = failures.up2.errors("delfail")
    assert text.startswith("exit status 4: running ") and "cannot delete" in text, text
    assert "delfail" in failures.state2


# --- single behaviours on their own small stacks -------------------------------------------------


def test_cancel_kills_the_commands_in_flight(key_dir: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "slow.pid"
    program = f"""
        from pulumi_command import local
        local.Command("slow", create="sh -c 'echo $$ > {pid_file}; exec sleep 60' & wait")
    """
    stack = new_stack(key_dir, tmp_path, "cancel", program, {})
    argv = [str(key_dir / "bin" / "pulumi"), "up", "--yes", "--skip-preview", "--stack", "dev", *FLAGS]
    start = time.monotonic()
    with subprocess.Popen(
        argv,
        cwd=stack.project,
        env=dict(stack.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as up:
        try:
            while not pid_file.exists() or not pid_file.read_text().strip():
                assert up.poll() is None, "pulumi up ended before the command started"
                assert time.monotonic() - start < TIMEOUT
                time.sleep(0.1)
            up.send_signal(signal.SIGINT)  # what ^C does: the engine asks the plugin to Cancel
            said, _ = up.communicate(timeout=60)
        finally:
            if up.poll() is None:
                up.kill()
    assert_dies(int(pid_file.read_text()), "the cancelled command's grandchild")
    assert up.returncode != 0
    assert "cancelled: the command's process group was killed" in said, said
    assert time.monotonic() - start < 45
    stack.run("stack", "rm", "--yes", "--force")


@pytest.mark.parametrize(
    ("use", "token"),
    [
        pytest.param(
            'local.run(command="true")',
            "command:local:run",
            id="invoke-local-run",
        ),
        pytest.param(
            'remote.Command("r", connection=remote.ConnectionArgs(host="h"), create="true")',
            "command:remote:Command",
            id="remote-command",
        ),
    ],
)
def test_other_tokens_are_rejected_with_a_clear_error(
    key_dir: Path, tmp_path: Path, use: str, token: str
) -> None:
    program = f"""
        from pulumi_command import local, remote
        {use}
    """
    stack = new_stack(key_dir, tmp_path, "others", program, {})
    run = stack.run("preview")
    assert run.returncode != 0
    assert f"{token} is not served by this plugin" in run.said, run.said
    assert "implements only command:local:Command" in run.said
    stack.run("stack", "rm", "--yes", "--force")


# --- the plugin itself --------------------------------------------------------------------------


def _pulumi_names(cls: type) -> set[str]:
    """The wire names of an SDK class's properties (what @pulumi.getter records)."""
    return {str(getattr(v.fget, "_pulumi_name", k)) for k, v in vars(cls).items() if isinstance(v, property)}


def test_the_schema_has_exactly_the_sdk_s_inputs_and_outputs(key_dir: Path, tmp_path: Path) -> None:
    from pulumi_command import local  # noqa: PLC0415 (the SDK the stacks use, imported only here)

    env = {**toolchain.toolchain_env(key_dir, REPO, "/usr/bin:/bin"), "HOME": str(tmp_path)}
    done = subprocess.run(
        [str(key_dir / "bin" / "pulumi"), "package", "get-schema", str(plugin_binary(key_dir))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )
    schema = json.loads(done.stdout)
    assert schema["name"] == "command" and schema["version"] == "1.2.1"
    assert "cilium-datapath-lab project's own build" in schema["description"]
    assert "not Pulumi's official binary" in schema["description"]
    assert set(schema["resources"]) == {COMMAND}
    assert schema.get("functions", {}) == {}
    command = schema["resources"][COMMAND]
    assert set(command["inputProperties"]) == _pulumi_names(local.CommandArgs)
    assert set(command["properties"]) == _pulumi_names(local.Command)
    assert set(command["required"]) == {"stdout", "stderr"}
    assert command["inputProperties"]["triggers"]["replaceOnChanges"] is True
    defaults = [k for k, p in command["inputProperties"].items() if "default" in p]
    assert defaults == [], "1.2.1 has no schema defaults"
    logging = schema["types"]["command:local:Logging"]["enum"]
    assert [e["value"] for e in logging] == [e.value for e in local.Logging]


def test_the_installed_plugin_is_the_projects_own_build_at_1_2_1(key_dir: Path) -> None:
    done = subprocess.run(
        [str(plugin_binary(key_dir)), "-version"], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout.startswith(
        "pulumi-resource-command 1.2.1: the cilium-datapath-lab project's own build"
    )
    assert "not Pulumi's official binary" in done.stdout


def test_the_go_unit_tests_pass(tmp_path: Path) -> None:
    """`go test` of the plugin's pure parts, in a copy (the module's own folder stays as committed)."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        pytest.skip(
            "no `go` on PATH (nor /usr/local/go/bin/go): install Go 1.26 to run the plugin's unit tests"
        )
    module = tmp_path / "command"
    shutil.copytree(MODULE, module)
    nice = ["nice", "-n", "19"] if shutil.which("nice") else []
    done = subprocess.run(
        [*nice, go, "test", "-count=1", "./..."],
        cwd=module,
        env={**os.environ, "GOFLAGS": "-buildvcs=false"},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout + done.stderr
