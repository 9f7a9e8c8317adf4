"""The project's own docker plugin (supply/toolchain/docker/), as `make toolchain` builds and installs it.

Its schema is compared with the wire names the installed pulumi_docker SDK sends and reads (parsed
from the SDK's source, so the comparison is with the SDK, not with a list of ours), and the lab's
kinds of networks and containers are created, read back, replaced and deleted for real: the built
`pulumi`, the Python language host and the plugin, on a local file backend, against the local Docker
engine. Skipped where the current recipe's toolchain is not built, or no Docker engine answers.
"""

from __future__ import annotations

import ast
import ipaddress
import json
import os
import re
import secrets
import shutil
import struct
import subprocess
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from test_real_engine import Pulumi

from host.preflight import _plugin_fix
from supply import toolchain

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PROBE = REPO / "tests" / "data" / "docker_plugin"
TIMEOUT = 300  # seconds for one command; each takes well under a minute here
PREFIX = "cdl-dockertest-"  # every Docker object the tests create starts with it
TEST_RANGE = ipaddress.ip_network("172.30.200.0/24")  # /28s of it, clear of the labs' 172.30.1-5.0/24
# Types and the resource of pulumi-docker's native (not Terraform) Image, which this plugin lacks.
NATIVE_RESOURCES = {"docker:index/image:Image"}
NATIVE_INPUT_TYPES = {"CacheFromArgs", "DockerBuildArgs", "RegistryArgs"}


def _sdk_dir() -> Path:
    found = sorted(REPO.glob(".venv/lib/python3*/site-packages/pulumi_docker"))
    if not found:
        pytest.skip("pulumi_docker is not installed in .venv: run `make venv`")
    return found[0]


@pytest.fixture(scope="module")
def key_dir() -> Path:
    try:
        found = toolchain.current_dir(os.environ)
    except (toolchain.ToolchainError, OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot look up the Pulumi toolchain ({exc}): run `make toolchain` (needs Go)")
    if found is None:
        pytest.skip("no Pulumi toolchain is built for the current recipe: run `make toolchain`")
    if not VENV_PYTHON.exists():
        pytest.skip(f"no {VENV_PYTHON} for the language host: run `make venv`")
    return found


def sdk_version() -> str:
    version = toolchain.installed_plugin_version(REPO / ".venv", "pulumi-docker")
    assert version is not None, "pulumi-docker is not installed in the venv"
    return version


def plugin_binary(key_dir: Path) -> Path:
    """The plugin as the engine finds it: installed in the toolchain's PULUMI_HOME."""
    return (
        key_dir / "pulumi-home" / "plugins" / f"resource-docker-v{sdk_version()}" / "pulumi-resource-docker"
    )


def engine(key_dir: Path, cwd: Path, root: Path, extra: Mapping[str, str] | None = None) -> Pulumi:
    """`pulumi` with its state in root/state and HOME in root/home; nothing of the caller's env but `extra`."""
    state, home = root / "state", root / "home"
    state.mkdir(exist_ok=True)
    home.mkdir(exist_ok=True)
    env = {
        **toolchain.toolchain_env(key_dir, REPO, "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PULUMI_BACKEND_URL": state.as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": "",
        **(extra or {}),
    }
    return Pulumi(key_dir, cwd, env)


# --- the SDK's wire names, read from its source -------------------------------------------------


def _shape_of_annotation(annotation: str) -> str:
    """array, map, object (one nested type) or scalar, from a getter's return annotation."""
    if "Sequence[" in annotation:
        return "array"
    if "Mapping[" in annotation:
        return "map"
    if "'" in annotation:  # a quoted nested type: 'ContainerCapabilitiesArgs', 'outputs.ContainerUpload'
        return "object"
    return "scalar"


def _shape_of_property(prop: Mapping[str, Any]) -> str:
    if prop.get("type") == "array":
        return "array"
    if prop.get("type") == "object" and "additionalProperties" in prop:
        return "map"
    if str(prop.get("$ref", "")).startswith("#/types/"):
        return "object"
    return "scalar"


def sdk_classes(path: Path) -> dict[str, dict[str, str]]:
    """Class name -> {wire name: shape} of every `@pulumi.getter` property in one SDK module.

    The wire name is the getter's `name=` when it has one (`@pulumi.getter(name="networksAdvanced")`),
    else the Python name, which is then the same on the wire (`labels`)."""
    classes: dict[str, dict[str, str]] = {}
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.ClassDef):
            continue
        props: dict[str, str] = {}
        for item in node.body:
            if not isinstance(item, ast.FunctionDef):
                continue
            for decorator in item.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                if ast.unparse(call.func if call else decorator) != "pulumi.getter":
                    continue
                names = [kw.value for kw in (call.keywords if call else []) if kw.arg == "name"]
                wire = ast.literal_eval(names[0]) if names else item.name
                props[wire] = _shape_of_annotation(ast.unparse(item.returns) if item.returns else "")
        classes[node.name] = props
    return classes


def sdk_function_inputs(path: Path) -> set[str]:
    """The wire names a function module sends: `__args__['name'] = ...`."""
    return {
        str(ast.literal_eval(node.slice))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "__args__"
    }


def sdk_resources(sdk: Path) -> dict[str, tuple[Path, str]]:
    """Token -> (module file, class) of every resource the SDK registers (its __init__.py)."""
    init = (sdk / "__init__.py").read_text()
    registered = json.loads(init.split('resource_modules="""', 1)[1].split('"""', 1)[0])
    found: dict[str, tuple[Path, str]] = {}
    for module in registered:
        for token, cls in module["classes"].items():
            name = module["mod"].split("/", 1)[1]
            found[token] = (sdk / (re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower() + ".py"), cls)
    return found


def schema_props(props: Mapping[str, Any]) -> dict[str, str]:
    return {name: _shape_of_property(prop) for name, prop in props.items()}


@pytest.fixture(scope="module")
def served(key_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The schema the installed plugin serves (GetSchema, via `pulumi package get-schema`)."""
    root = tmp_path_factory.mktemp("schema")
    pulumi = engine(key_dir, root, root)
    schema: dict[str, Any] = json.loads(pulumi.ok("package", "get-schema", f"docker@{sdk_version()}"))
    return schema


def test_the_plugin_is_the_sdks_version_and_says_whose_build_it_is(
    key_dir: Path, served: Mapping[str, Any]
) -> None:
    assert served["name"] == "docker"
    assert served["version"] == sdk_version()
    said = served["description"]
    assert "the cilium-datapath-lab project's own build" in said and "not Pulumi's official binary" in said
    assert "github.com/kreuzwerker/terraform-provider-docker@v0.0.0-" in said
    assert re.search(r"github\.com/pulumi/pulumi-terraform-bridge/v3 v3\.\d+\.\d+", said), said
    ran = subprocess.run(
        [str(plugin_binary(key_dir)), "-version"], capture_output=True, text=True, check=True, timeout=60
    )
    assert ran.stdout.strip() == sdk_version()


def test_the_plugins_startup_log_line_says_whose_build_it_is(key_dir: Path) -> None:
    """With the engine's logging flags (`pulumi -v=1 --logflow --logtostderr`), the plugin's first
    log line names this build; without an engine address it serves in attach mode and prints its port."""
    plugin = subprocess.Popen(
        [str(plugin_binary(key_dir)), "--logtostderr", "-v=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert plugin.stdout is not None
        port = plugin.stdout.readline().strip()
        assert port.isdigit(), port
    finally:
        plugin.terminate()
        _, stderr = plugin.communicate(timeout=60)
    [line] = [json.loads(x) for x in stderr.splitlines() if "own build" in x]
    assert line["msg"].startswith(
        f"pulumi-resource-docker {sdk_version()}: the cilium-datapath-lab project's own build"
    )
    assert "bridged from kreuzwerker's Terraform Docker provider" in line["msg"]


def test_the_sdk_is_read_at_all() -> None:
    """The control for the comparisons below: the parse finds the lab's own wire names in the SDK."""
    sdk = _sdk_dir()
    container = sdk_classes(sdk / "container.py")["ContainerArgs"]
    assert {"networksAdvanced", "networkMode", "mustRun", "entrypoints", "command"} <= set(container)
    assert container["capabilities"] == "object" and container["sysctls"] == "map"
    assert container["uploads"] == "array" and container["privileged"] == "scalar"
    network = sdk_classes(sdk / "network.py")["NetworkArgs"]
    assert network["ipamConfigs"] == "array" and network["options"] == "map" and network["labels"] == "array"
    assert "ipv4Address" in sdk_classes(sdk / "_inputs.py")["ContainerNetworksAdvancedArgs"]
    assert {"keepLocally", "imageId"} <= set(sdk_classes(sdk / "remote_image.py")["RemoteImage"])
    assert sdk_function_inputs(sdk / "get_network.py") == {"name"}


def test_every_resource_has_the_sdks_wire_names_and_shapes(served: Mapping[str, Any]) -> None:
    """Inputs (<Name>Args) and outputs (the resource's getters) of every resource the SDK registers,
    among them Network (ipamConfigs, options, labels, driver), Container (networksAdvanced, networkMode,
    privileged, sysctls, capabilities, uploads, restart, mustRun, ...) and RemoteImage (name, keepLocally)."""
    resources = sdk_resources(_sdk_dir())
    assert {"docker:index/network:Network", "docker:index/container:Container"} <= set(resources)
    missing = set(resources) - set(served["resources"])
    assert missing == NATIVE_RESOURCES
    for token, (module, cls) in sorted(resources.items()):
        if token in NATIVE_RESOURCES:
            continue
        classes, spec = sdk_classes(module), served["resources"][token]
        assert schema_props(spec.get("inputProperties", {})) == classes[f"{cls}Args"], token
        assert schema_props(spec.get("properties", {})) == classes[cls], token


def _sdk_type_classes(token: str) -> list[str]:
    """The SDK's classes for a schema type: XArgs (input) and X (output); GetX...Args/Result for a
    function's; the provider config's are in config/outputs.py, capitalised."""
    name = token.rsplit(":", 1)[1]
    upper = name[0].upper() + name[1:]
    if token.startswith("docker:config/"):
        return [upper]
    if name.startswith("get"):
        return [f"{upper}Args", f"{upper}Result"]
    return [f"{name}Args", name]


def test_every_nested_type_has_the_sdks_wire_names_and_shapes(served: Mapping[str, Any]) -> None:
    sdk = _sdk_dir()
    inputs, outputs = sdk_classes(sdk / "_inputs.py"), sdk_classes(sdk / "outputs.py")
    config_outputs = sdk_classes(sdk / "config" / "outputs.py")
    for token, spec in sorted(served["types"].items()):
        props = schema_props(spec.get("properties", {}))
        source = config_outputs if token.startswith("docker:config/") else {**inputs, **outputs}
        classes = [c for c in _sdk_type_classes(token) if c in source]
        assert classes, f"{token}: no class of the SDK"
        for cls in classes:
            assert source[cls] == props, f"{token} vs {cls}"
    served_names = {c for token in served["types"] for c in _sdk_type_classes(token)}
    unserved = {c for c in inputs if not c.endswith("ArgsDict") and c not in served_names}
    assert unserved == NATIVE_INPUT_TYPES


def test_the_provider_config_matches_and_host_defaults_from_docker_host(served: Mapping[str, Any]) -> None:
    provider = sdk_classes(_sdk_dir() / "provider.py")["ProviderArgs"]
    assert schema_props(served["provider"]["inputProperties"]) == provider
    assert {"host", "registryAuth"} <= set(provider) and provider["registryAuth"] == "array"
    for host in (served["provider"]["inputProperties"]["host"], served["config"]["variables"]["host"]):
        assert host["defaultInfo"]["environment"] == ["DOCKER_HOST"]
        assert host["default"] == "unix:///var/run/docker.sock"


def test_every_function_takes_and_returns_the_sdks_wire_names(served: Mapping[str, Any]) -> None:
    sdk = _sdk_dir()
    tokens = set(
        re.findall(r"invoke\('(docker:index/[^']+)'", "".join(p.read_text() for p in sdk.glob("get_*.py")))
    )
    assert len(tokens) >= 6
    for token in sorted(tokens):
        name = token.rsplit(":", 1)[1]
        module = sdk / (re.sub(r"([A-Z])", r"_\1", name).lower() + ".py")
        spec = served["functions"][token]
        assert set(spec["inputs"].get("properties", {})) == sdk_function_inputs(module), token
        result = sdk_classes(module)[name[0].upper() + name[1:] + "Result"]
        assert schema_props(spec["outputs"]["properties"]) == result, token


def test_a_docker_version_the_toolchain_does_not_build_points_at_the_one_it_does() -> None:
    """The preflight's fix for another pulumi-docker version: the toolchain's docker is its own build, at 5.2.0."""
    fix = _plugin_fix("docker", "5.3.0", {("docker", "5.2.0"), ("kubernetes", "4.25.0")})
    assert "`make toolchain` builds docker only at 5.2.0" in fix
    assert "pin pulumi-docker==5.2.0" in fix
    refused = _plugin_fix("docker", "5.3.0", {("kubernetes", "4.25.0")})
    assert "so `make toolchain` cannot build it" in refused


# --- the lab's kinds of networks and containers, for real ----------------------------------------


def _docker(env: Mapping[str, str], *args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["docker", *args], env=dict(env), capture_output=True, text=True, check=False, timeout=TIMEOUT
    )
    if check:
        assert done.returncode == 0, f"docker {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def docker_env() -> dict[str, str]:
    """The engine `make test` uses: yours (DOCKER_HOST, the default socket), else the project's own."""
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI here")
    env = dict(os.environ)
    host = subprocess.run(
        [str(REPO / "engine" / "dockerd.sh"), "host-if-needed"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if host:
        env["DOCKER_HOST"] = host
    if subprocess.run(["docker", "info"], env=env, capture_output=True, check=False, timeout=60).returncode:
        pytest.skip("no Docker engine reachable: run `make dockerd` (make test points DOCKER_HOST at it)")
    return env


def _static(executable: Path) -> bool:
    """An ELF executable without a program interpreter: it runs in an image that holds nothing else."""
    with executable.open("rb") as fh:
        header = fh.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit ELF only
            return False
        (phoff,) = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))  # PT_INTERP


@pytest.fixture(scope="module")
def image(docker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tiny image of our own, `docker import`ed from the host's static busybox (Debian's
    busybox-static), so nothing is pulled; removed afterwards."""
    busybox = Path("/bin/busybox")
    if not busybox.exists() or not _static(busybox):
        pytest.skip("no static /bin/busybox to make a test image of: apt-get install busybox-static")
    rootfs = tmp_path_factory.mktemp("image") / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.add(busybox, arcname="bin/busybox")
        for applet in ("sh", "sleep", "cat", "ip"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    tag = f"{PREFIX}busybox:{secrets.token_hex(4)}"
    _docker(docker_env, "import", "--change", 'CMD ["/bin/sh"]', str(rootfs), tag)
    try:
        yield tag
    finally:
        _docker(docker_env, "rmi", "--force", tag, check=False)


def free_subnet(env: Mapping[str, str]) -> ipaddress.IPv4Network:
    """A /28 of TEST_RANGE that no Docker network holds (the labs' and other tests' included)."""
    ids = _docker(env, "network", "ls", "--quiet").split()
    used = [
        ipaddress.ip_network(config["Subnet"], strict=False)
        for network in json.loads(_docker(env, "network", "inspect", *ids))
        for config in (network.get("IPAM") or {}).get("Config") or []
        if config.get("Subnet")
    ]
    for candidate in TEST_RANGE.subnets(new_prefix=28):
        if not any(candidate.overlaps(u) for u in used if u.version == 4):
            assert isinstance(candidate, ipaddress.IPv4Network)
            return candidate
    pytest.skip(f"every /28 of {TEST_RANGE} is taken by a Docker network")


def inspect(env: Mapping[str, str], *names: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(_docker(env, "inspect", *names))
    return found


def test_the_labs_networks_and_containers_are_created_read_back_replaced_and_deleted(
    key_dir: Path, docker_env: dict[str, str], image: str, tmp_path: Path
) -> None:
    prefix = f"{PREFIX}{secrets.token_hex(4)}"
    subnet = free_subnet(docker_env)
    project = tmp_path / "probe"
    shutil.copytree(PROBE, project)
    base: dict[str, str] = {
        **{name: docker_env[name] for name in ("DOCKER_HOST", "DOCKER_CONTEXT") if name in docker_env},
        "DOCKERTEST_PREFIX": prefix,
        "DOCKERTEST_SUBNET": str(subnet),
        "DOCKERTEST_IMAGE": image,
    }
    pulumi = engine(key_dir, project, tmp_path, {**base, "DOCKERTEST_UPLOAD": "first\n"})
    flags = ("--stack", "probe", "--non-interactive", "--color", "never")
    network, router, sidecar = f"{prefix}-net", f"{prefix}-router", f"{prefix}-sidecar"
    pulumi.ok("stack", "init", "probe", "--secrets-provider", "passphrase", "--non-interactive")
    try:
        said = pulumi.ok("up", "--yes", "--skip-preview", *flags)
        assert re.search(r"\+ 5 created", said), said
        outputs = json.loads(pulumi.ok("stack", "output", "--json", "--stack", "probe"))
        address = outputs["address"]

        [net] = json.loads(_docker(docker_env, "network", "inspect", network))
        assert net["Id"] == outputs["network"] and net["Driver"] == "bridge"
        [ipam] = net["IPAM"]["Config"]
        hosts = list(subnet.hosts())
        assert (ipam["Subnet"], ipam["Gateway"]) == (str(subnet), str(hosts[0]))
        assert ipam["IPRange"] == str(next(subnet.subnets(prefixlen_diff=1)))
        assert net["Options"]["com.docker.network.driver.mtu"] == "1400"
        assert net["Options"]["com.docker.network.bridge.enable_ip_masquerade"] == "true"
        assert net["Labels"] == {"cdl.dockertest": prefix}

        [first] = inspect(docker_env, router)
        assert first["Id"] == outputs["router"] and first["State"]["Running"]
        host_config = first["HostConfig"]
        assert host_config["Privileged"] is True
        assert {c.removeprefix("CAP_") for c in host_config["CapAdd"]} == {"NET_ADMIN", "NET_RAW"}
        assert host_config["Sysctls"] == {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.send_redirects": "0"}
        assert host_config["RestartPolicy"]["Name"] == "unless-stopped"
        endpoint = first["NetworkSettings"]["Networks"][network]
        assert endpoint["IPAddress"] == address and "router" in endpoint["Aliases"]
        assert first["Config"]["Labels"]["cdl.dockertest"] == prefix
        assert _docker(docker_env, "exec", router, "cat", "/etc/cdl/probe.conf") == "first\n"
        assert _docker(docker_env, "exec", router, "cat", "/proc/sys/net/ipv4/ip_forward").strip() == "1"
        assert _docker(docker_env, "exec", router, "cat", "/sys/class/net/eth0/mtu").strip() == "1400"

        [side] = inspect(docker_env, sidecar)
        assert side["Id"] == outputs["sidecar"] and side["HostConfig"]["Privileged"] is True
        assert side["HostConfig"]["NetworkMode"] == f"container:{first['Id']}"
        assert f"inet {address}/28" in _docker(docker_env, "exec", sidecar, "ip", "-4", "addr")

        # Read back: the engine's own refresh and a second preview find nothing to change.
        pulumi.ok("refresh", "--yes", "--expect-no-changes", *flags)
        pulumi.ok("preview", "--diff", "--expect-no-changes", *flags)

        # A new upload replaces the router under the same name (the plugin's delete-before-replace),
        # and its sidecar with it, in the new container's namespace.
        again = engine(key_dir, project, tmp_path, {**base, "DOCKERTEST_UPLOAD": "second\n"})
        said = again.ok("up", "--yes", "--skip-preview", *flags)
        assert said.index("router deleted original") < said.index("router creating replacement"), said
        assert re.search(r"\+-2 replaced", said), said
        [second] = inspect(docker_env, router)
        assert second["Id"] != first["Id"] and second["State"]["Running"]
        assert _docker(docker_env, "exec", router, "cat", "/etc/cdl/probe.conf") == "second\n"
        [side] = inspect(docker_env, sidecar)
        assert side["HostConfig"]["NetworkMode"] == f"container:{second['Id']}"
        again.ok("preview", "--diff", "--expect-no-changes", *flags)

        again.ok("destroy", "--yes", "--skip-preview", *flags)
        assert (
            _docker(docker_env, "ps", "--all", "--quiet", "--filter", f"label=cdl.dockertest={prefix}") == ""
        )
        assert _docker(docker_env, "network", "ls", "--quiet", "--filter", f"name=^{network}$") == ""
        assert _docker(docker_env, "image", "inspect", "--format", "{{.Id}}", image).startswith("sha256:")
    finally:
        leftovers = _docker(
            docker_env, "ps", "--all", "--quiet", "--filter", f"label=cdl.dockertest={prefix}", check=False
        ).split()
        if leftovers:
            _docker(docker_env, "rm", "--force", *leftovers, check=False)
        _docker(docker_env, "network", "rm", network, check=False)
        pulumi("stack", "rm", "probe", "--yes", "--force", "--non-interactive")
