"""engine/runc_capfilter.py cases a mutation run (`make mutation`) found no test for.

test_engine.py runs the wrapper as dockerd does, a script under `python3 -I -S`, where no mutant
can switch on; here main() and real_runc() run in-process (os.execv replaced), and the argv and
JSON edges the real shim never sends are pinned one by one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import runc_capfilter as capfilter

FULL_MASK = (1 << (max(capfilter.CAP_NUMBERS.values()) + 1)) - 1
NO_SYS_RESOURCE = FULL_MASK & ~(1 << capfilter.CAP_NUMBERS["CAP_SYS_RESOURCE"])
CAPS = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"]
KEPT = ["CAP_CHOWN", "CAP_NET_ADMIN"]


def _config(path: Path, caps: list[str] | None = None, extra: dict[str, object] | None = None) -> Path:
    caps = CAPS if caps is None else caps
    sets = {s: list(caps) for s in ("bounding", "effective", "permitted")}
    # Raw UTF-8, as Go's encoding/json writes runc's config (it escapes no letter).
    document = {"process": {"capabilities": sets}, **(extra or {})}
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def _sets(path: Path) -> dict[str, list[str]]:
    caps: dict[str, list[str]] = json.loads(path.read_text())["process"]["capabilities"]
    return caps


# --- bounding_mask ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line", ["CapBnd:\t000001fffeffffff", "CapBnd:000001fffeffffff", "CapBnd:   1fffeffffff "]
)
def test_the_mask_is_read_whatever_whitespace_follows_the_colon(line: str) -> None:
    assert capfilter.bounding_mask(f"Name:\trunc\n{line}\n") == NO_SYS_RESOURCE


@pytest.mark.parametrize("line", ["CapBnd:\t1ff:0", "CapBnd:\t1ff:ff:0"])
def test_a_capbnd_line_with_more_after_the_mask_is_refused_not_half_read(line: str) -> None:
    with pytest.raises(ValueError, match="invalid literal"):
        capfilter.bounding_mask(line + "\n")


def test_no_capbnd_line_is_said_in_those_words() -> None:
    with pytest.raises(ValueError, match=r"^no CapBnd line in the process status$"):
        capfilter.bounding_mask("Name:\tx\nCapEff:\t0\n")


# --- filter_capabilities and filter_file ------------------------------------------------------------


def test_a_set_that_is_absent_or_not_a_list_does_not_stop_the_sets_after_it() -> None:
    caps: dict[str, object] = {"bounding": None, "effective": list(CAPS), "permitted": list(CAPS)}
    assert capfilter.filter_capabilities(caps, NO_SYS_RESOURCE) == ["CAP_SYS_RESOURCE"]
    assert caps == {"bounding": None, "effective": KEPT, "permitted": KEPT}


@pytest.mark.parametrize("document", [{"process": ["not", "a", "table"]}, {"process": "x"}, [1, 2], "text"])
def test_a_document_without_the_capabilities_table_is_left_alone(tmp_path: Path, document: object) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    before = path.read_bytes()
    assert capfilter.filter_file(str(path), ("process", "capabilities"), NO_SYS_RESOURCE) == []
    assert path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_the_rewritten_file_keeps_its_mode(tmp_path: Path, mode: int) -> None:
    path = _config(tmp_path / "config.json")
    path.chmod(mode)
    assert capfilter.filter_file(str(path), ("process", "capabilities"), NO_SYS_RESOURCE) == [
        "CAP_SYS_RESOURCE"
    ]
    assert path.stat().st_mode & 0o7777 == mode


def test_a_rewrite_that_cannot_be_renamed_into_place_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(tmp_path / "config.json")
    before = path.read_bytes()

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied", dst)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        capfilter.filter_file(str(path), ("process", "capabilities"), NO_SYS_RESOURCE)
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
    assert path.read_bytes() == before


def test_the_json_is_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    """runc's config holds what the user gave (an env value, a hostname): read in the C locale's
    ASCII it would fail, and the filter would give up on the bundle. A fresh python in the plain C
    locale (no coercion to C.UTF-8, no UTF-8 mode) runs filter_file, this test's mutant (if any)
    switched on as in this process."""
    path = _config(tmp_path / "config.json", extra={"hostname": "café-nœud"})
    assert "é".encode() in path.read_bytes()
    code = (
        "import sys; from engine import runc_capfilter as c; "
        "print(c.filter_file(sys.argv[1], ('process', 'capabilities'), int(sys.argv[2])))"
    )
    env = {
        **os.environ,
        "LC_ALL": "C",
        "PYTHONCOERCECLOCALE": "0",
        "PYTHONUTF8": "0",
        "PYTHONPATH": str(Path(capfilter.__file__).resolve().parent.parent),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), str(NO_SYS_RESOURCE)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, "['CAP_SYS_RESOURCE']\n"), done.stderr
    assert json.loads(path.read_text(encoding="utf-8"))["hostname"] == "café-nœud"
    assert _sets(path)["bounding"] == KEPT


# --- argv: subcommand, option_value, target ---------------------------------------------------------


@pytest.mark.parametrize("switch", ["--debug", "--systemd-cgroup", "--no-pivot"])
def test_a_global_switch_takes_no_value(switch: str) -> None:
    assert capfilter.subcommand(["runc", switch, "create", "ctr1"]) == (2, "create")
    assert capfilter.subcommand(["runc", "--root", "/r", switch, "exec", "ctr1"]) == (4, "exec")


def test_a_global_option_given_as_name_value_is_one_argument() -> None:
    assert capfilter.subcommand(["runc", "--root=/r", "--log=/l", "create", "ctr1"]) == (3, "create")
    assert capfilter.subcommand(["runc", "--root"]) is None


def test_an_option_with_no_value_left_is_none_and_a_last_value_is_read() -> None:
    assert capfilter.option_value(["--detach", "--process"], "process", "p") is None
    assert capfilter.option_value(["-p"], "process", "p") is None
    assert capfilter.option_value(["--process", "/f"], "process", "p") == "/f"
    assert capfilter.option_value(["ctr1", "-p", "/f"], "process", "p") == "/f"


def test_nothing_after_a_double_dash_is_an_option() -> None:
    assert capfilter.option_value(["--", "--process", "/f"], "process", "p") is None
    assert capfilter.option_value(["ctr1", "--", "-p", "/f"], "process", "p") is None


@pytest.mark.parametrize(
    "spelling", [["--bundle", "{b}"], ["-b", "{b}"], ["--bundle={b}"], ["-b={b}"], ["-bundle", "{b}"]]
)
def test_the_bundle_option_wins_over_the_working_directory(tmp_path: Path, spelling: list[str]) -> None:
    argv = ["runc", "--root", "/r", "create", *(s.format(b=tmp_path) for s in spelling), "ctr1"]
    assert capfilter.target(argv, cwd="/elsewhere") == (
        str(tmp_path / "config.json"),
        ("process", "capabilities"),
    )


def test_only_the_commands_own_arguments_are_read() -> None:
    """A global option's value that looks like the command's flag (a log file named `-b`) is not
    the bundle: runc reads its bundle from the working directory here."""
    argv = ["runc", "--log", "-b", "create", "ctr1"]
    assert capfilter.target(argv, cwd="/run/bundle") == (
        "/run/bundle/config.json",
        ("process", "capabilities"),
    )
    assert capfilter.target(["runc", "--log", "-p", "exec", "ctr1", "sh"], cwd="/") is None


# --- real_runc --------------------------------------------------------------------------------------


def test_the_runc_named_in_the_environment_is_taken_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNC_CAPFILTER_RUNC", "/opt/runc/bin/runc")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert capfilter.real_runc() == "/opt/runc/bin/runc"


def _runc(directory: Path, executable: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    runc = directory / "runc"
    runc.write_text("#!/bin/sh\n")
    runc.chmod(0o755 if executable else 0o644)
    return runc


def test_the_first_executable_runc_on_path_that_is_not_the_wrapper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNC_CAPFILTER_RUNC", raising=False)
    _runc(tmp_path / "plain", executable=False)
    (tmp_path / "wrapper").mkdir()
    (tmp_path / "wrapper" / "runc").symlink_to(Path(capfilter.__file__).resolve())  # as installed
    real = _runc(tmp_path / "real")
    _runc(tmp_path / "later")
    path = os.pathsep.join(str(tmp_path / d) for d in ("missing", "plain", "wrapper", "real", "later"))
    monkeypatch.setenv("PATH", path)
    assert capfilter.real_runc() == str(real)


def test_the_path_searched_by_default_and_for_an_empty_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def access(path: str, mode: int) -> bool:
        assert mode == os.X_OK
        asked.append(path)
        return False

    monkeypatch.delenv("RUNC_CAPFILTER_RUNC", raising=False)
    monkeypatch.setattr(os, "access", access)
    monkeypatch.delenv("PATH")
    message = r"^runc-capfilter: no runc on PATH \(install Debian's runc, or set RUNC_CAPFILTER_RUNC\)$"
    with pytest.raises(SystemExit, match=message):
        capfilter.real_runc()
    assert asked == ["/usr/sbin/runc", "/usr/bin/runc", "/sbin/runc", "/bin/runc"]
    asked.clear()
    monkeypatch.setenv("PATH", "/a::/b")
    with pytest.raises(SystemExit, match=message):
        capfilter.real_runc()
    assert asked == ["/a/runc", "./runc", "/b/runc"]


# --- main -------------------------------------------------------------------------------------------


class Execd(Exception):
    """What os.execv was asked to become, instead of becoming it."""


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """main() in-process: os.execv raises Execd, /proc/self/status yields NO_SYS_RESOURCE (its text
    is kept in the returned list, which main must have read), the real runc is /opt/bin/runc."""
    statuses: list[str] = []

    def execv(path: str, args: list[str]) -> None:
        raise Execd(path, args)

    def mask(text: str) -> int:
        statuses.append(text)
        return NO_SYS_RESOURCE

    monkeypatch.setattr(os, "execv", execv)
    monkeypatch.setattr(capfilter, "bounding_mask", mask)
    monkeypatch.setenv("RUNC_CAPFILTER_RUNC", "/opt/bin/runc")
    return statuses


def test_main_filters_the_bundle_in_the_working_directory_then_becomes_runc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, execs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path / "config.json")
    monkeypatch.chdir(tmp_path)
    argv = ["runc-capfilter", "--root", "/r", "create", "--pid-file", "/p", "ctr1"]
    with pytest.raises(Execd) as became:
        capfilter.main(argv)
    assert became.value.args == ("/opt/bin/runc", ["/opt/bin/runc", *argv[1:]])
    assert _sets(config) == {s: KEPT for s in ("bounding", "effective", "permitted")}
    [status] = execs  # this process's own status, whole
    capbnd = next(
        line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("CapBnd:")
    )
    assert status.startswith("Name:\t") and f"\n{capbnd}\n" in status
    assert capsys.readouterr() == ("", "")


def test_main_filters_an_exec_process_file(tmp_path: Path, execs: list[str]) -> None:
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"capabilities": {"bounding": list(CAPS)}}))
    with pytest.raises(Execd):
        capfilter.main(["runc-capfilter", "exec", "--process", str(process), "ctr1"])
    assert json.loads(process.read_text()) == {"capabilities": {"bounding": KEPT}}


def test_main_says_why_it_does_not_filter_and_still_becomes_runc(
    tmp_path: Path, execs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    argv = ["runc-capfilter", "run", "--bundle", str(missing), "ctr1"]
    with pytest.raises(Execd) as became:
        capfilter.main(argv)
    assert became.value.args == ("/opt/bin/runc", ["/opt/bin/runc", *argv[1:]])
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"runc-capfilter: not filtering {missing}/config.json: "
        f"[Errno 2] No such file or directory: '{missing}/config.json'\n"
    )


def test_main_passes_other_commands_through_without_reading_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, execs: list[str]
) -> None:
    config = _config(tmp_path / "config.json")
    before = config.read_bytes()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Execd) as became:
        capfilter.main(["runc-capfilter", "start", "ctr1"])
    assert became.value.args == ("/opt/bin/runc", ["/opt/bin/runc", "start", "ctr1"])
    assert execs == [] and config.read_bytes() == before
