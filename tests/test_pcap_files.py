"""`verify pcap` on files that are not good captures, and the command line around it.

Every broken file gets one line on stderr naming the file and what is wrong, and an exit code of
its own (the table is in `python -m verify pcap --help`); none gets a traceback.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pcap import (
    NODE_A,
    NODE_B,
    POD_A,
    POD_C,
    pcap_bytes,
    pcapng_block,
    pcapng_bytes,
    pod_icmp,
    vxlan_ping,
)
from test_pcap_tunnels import CRAFTED

from verify import pcap
from verify.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
FRAMES = [bytes(f) for f in vxlan_ping(8472, vni=42)]
GOOD_PCAP = pcap_bytes(FRAMES)
GOOD_PCAPNG = pcapng_bytes(FRAMES)
BLOCK_OF_13_BYTES = (6).to_bytes(4, "little") + (13).to_bytes(4, "little") + b"\x00" * 8

EXIT = {
    "ok": 0,
    "usage": 2,
    "unreadable": 3,
    "empty": 4,
    "not-a-capture": 5,
    "truncated-header": 6,
    "truncated-record": 7,
    "malformed": 8,
}


def run_cli(
    capsys: pytest.CaptureFixture[str], path: Path, *extra: str
) -> tuple[int, list[dict[str, object]], list[str]]:
    code = main(["pcap", str(path), *extra])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err.splitlines()


def assert_one_line_error(err: list[str], path: Path, *words: str) -> None:
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and str(path) in err[0], err
    for word in words:
        assert word in err[0], err
    assert "Traceback" not in err[0]


# --- broken files, one class each ----------------------------------------------------------------


class Broken(NamedTuple):
    content: bytes
    kind: str  # a key of EXIT
    words: tuple[str, ...]  # what the error line must say besides the file's name
    printed: int = 0  # complete records ahead of the problem, which are printed


BROKEN = {
    "zero-bytes": Broken(b"", "empty", ("empty",)),
    "text": Broken(b"this is a README, not a capture\n" * 4, "not-a-capture", ("not a pcap or pcapng",)),
    "two-bytes": Broken(b"\x00\x01", "not-a-capture", ("not a pcap or pcapng",)),
    "pcap-header-cut": Broken(GOOD_PCAP[:10], "truncated-header", ("file header is truncated", "10 of 24")),
    "pcap-magic-cut": Broken(GOOD_PCAP[:3], "truncated-header", ("file header", "3 of 24")),
    "pcapng-header-cut": Broken(
        GOOD_PCAPNG[:20], "truncated-header", ("section header is truncated", "20 of 28")
    ),
    "record-header-cut": Broken(
        GOOD_PCAP[: 24 + 16 + len(FRAMES[0]) + 7],
        "truncated-record",
        ("record 1", "truncated", "header has 7 of 16"),
        1,
    ),
    "record-data-cut": Broken(
        GOOD_PCAP[:-30],
        "truncated-record",
        ("record 1", "truncated", f"{len(FRAMES[1]) - 30} of its {len(FRAMES[1])}"),
        1,
    ),
    "pcapng-block-cut": Broken(GOOD_PCAPNG[:-10], "truncated-record", ("record 1", "truncated"), 1),
    "pcapng-bad-block-length": Broken(GOOD_PCAPNG + BLOCK_OF_13_BYTES, "malformed", ("block length 13",), 2),
    "pcapng-packet-before-interface": Broken(
        GOOD_PCAPNG[:28] + pcapng_block(6, b"\x00" * 20 + FRAMES[0]), "malformed", ("interface 0",)
    ),
    "pcap-record-too-big": Broken(
        GOOD_PCAP[:24] + b"\x00" * 8 + (0x7FFFFFFF).to_bytes(4, "little") * 2, "malformed", ("2147483647",)
    ),
    "pcap-version-1": Broken(GOOD_PCAP[:4] + b"\x01\x00" + GOOD_PCAP[6:], "malformed", ("version 1.4",)),
}


@pytest.mark.parametrize("name", BROKEN)
def test_each_broken_file_gives_one_line_and_its_own_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    broken = BROKEN[name]
    path = tmp_path / f"{name}.pcap"
    path.write_bytes(broken.content)
    code, packets, err = run_cli(capsys, path)
    assert code == EXIT[broken.kind], err
    assert_one_line_error(err, path, *broken.words)
    # The complete records ahead of the problem are printed; nothing of the broken one is.
    expected = [(0, 42, POD_A), (1, 42, POD_C)][: broken.printed]
    assert [(p["index"], p["vni"], p["inner_src"]) for p in packets] == expected


def test_the_exit_codes_are_distinct_and_documented(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(set(EXIT.values())) == len(EXIT)
    with pytest.raises(SystemExit):
        main(["pcap", "--help"])
    help_text = capsys.readouterr().out
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("`python -m verify pcap FILE")
    paragraph = readme[start : readme.index("\n\n", start)]
    for code in EXIT.values():
        assert re.search(rf"^ +{code} +\w", help_text, re.MULTILINE), help_text
        assert f"`{code}`" in paragraph, paragraph


@pytest.mark.parametrize("name", ["record-data-cut", "pcap-header-cut", "zero-bytes", "text"])
def test_the_api_raises_an_oserror_naming_the_file(tmp_path: Path, name: str) -> None:
    """Checks turn an OSError into "could not collect the evidence", so a bad capture fails a check."""
    path = tmp_path / f"{name}.pcap"
    path.write_bytes(BROKEN[name].content)
    with pytest.raises(pcap.CaptureError) as caught:
        pcap.analyze(path)
    assert isinstance(caught.value, OSError)
    assert str(path) in str(caught.value)


def test_a_file_that_is_not_there_or_not_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path in (tmp_path / "missing.pcap", tmp_path):
        code, packets, err = run_cli(capsys, path)
        assert (code, packets) == (EXIT["unreadable"], [])
        assert_one_line_error(err, path)


# --- good files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [GOOD_PCAP, GOOD_PCAPNG], ids=["pcap", "pcapng"])
def test_good_pcap_and_pcapng_decode_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    path = tmp_path / "good"
    path.write_bytes(content)
    code, packets, err = run_cli(capsys, path)
    assert (code, err) == (0, [])
    assert [
        (p["encapsulation"], p["vni"], p["outer_src"], p["inner_dst"], p["icmp_type"]) for p in packets
    ] == [
        ("vxlan", 42, NODE_A, POD_C, 8),
        ("vxlan", 42, NODE_B, POD_A, 0),
    ]


def test_big_endian_nanosecond_pcap_and_a_second_pcapng_section(tmp_path: Path) -> None:
    frame = bytes(pod_icmp(POD_A, POD_C, 8))
    header = (0xA1B23C4D).to_bytes(4, "big") + bytes.fromhex("0002 0004 00000000 00000000 00040000 00000001")
    record = bytes.fromhex("00000001 00000002") + len(frame).to_bytes(4, "big") * 2 + frame
    big = tmp_path / "big-endian-ns.pcap"
    big.write_bytes(header + record + record)
    assert [(p.index, p.inner_src, p.icmp_type) for p in pcap.analyze(big)] == [(0, POD_A, 8), (1, POD_A, 8)]
    # pcapng files may be concatenated: each section brings its own byte order and interfaces.
    two = tmp_path / "two-sections.pcapng"
    cooked = bytes.fromhex("0000 0001 0006 020000000003 0000 0800") + bytes(pod_icmp(POD_C, POD_A, 0))[14:]
    two.write_bytes(pcapng_bytes([frame]) + pcapng_bytes([cooked], linktype=113, endian=">"))
    assert [(p.index, p.inner_src, p.icmp_type) for p in pcap.analyze(two)] == [(0, POD_A, 8), (1, POD_C, 0)]


# --- whatever the bytes, a packet or a CaptureError -------------------------------------------------

SEEDS = [GOOD_PCAP, GOOD_PCAPNG, pcapng_bytes(FRAMES, endian=">")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.sampled_from(SEEDS),
    cut=st.integers(min_value=0, max_value=len(GOOD_PCAPNG)),
    flips=st.lists(st.tuples(st.integers(min_value=0, max_value=400), st.integers(0, 255)), max_size=6),
)
def test_any_damage_to_a_file_is_a_capture_error_never_a_traceback(
    tmp_path: Path, seed: bytes, cut: int, flips: list[tuple[int, int]]
) -> None:
    damaged = bytearray(seed[:cut])
    for at, value in flips:
        if at < len(damaged):
            damaged[at] = value
    path = tmp_path / "damaged"
    path.write_bytes(bytes(damaged))
    try:
        packets = pcap.analyze(path)
    except pcap.CaptureError as exc:
        assert str(path) in str(exc)
    else:
        assert len(packets) <= 2


FRAME_SEEDS = [f for frames, _, _ in CRAFTED.values() for f in frames]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    frame=st.sampled_from(FRAME_SEEDS),
    linktype=st.sampled_from([0, 1, 101, 108, 113, 228, 229, 276, 147]),
    cut=st.integers(min_value=0, max_value=200),
    flips=st.lists(st.tuples(st.integers(min_value=0, max_value=120), st.integers(0, 255)), max_size=6),
)
def test_any_frame_decodes_to_one_packet(
    tmp_path: Path, frame: bytes, linktype: int, cut: int, flips: list[tuple[int, int]]
) -> None:
    damaged = bytearray(frame[: len(frame) - cut])
    for at, value in flips:
        if at < len(damaged):
            damaged[at] = value
    path = tmp_path / "frame.pcap"
    path.write_bytes(pcap_bytes([(bytes(damaged), len(frame))], linktype))
    (packet,) = pcap.analyze(path)
    assert packet.length == len(frame)
    assert packet.encapsulation in ("vxlan", "geneve", "none")


# --- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--vxlan-port", "--geneve-port"])
@pytest.mark.parametrize("value", ["0", "65536", "99999", "-1", "vxlan"])
def test_ports_must_be_1_to_65535(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    path = tmp_path / "good.pcap"
    path.write_bytes(GOOD_PCAP)
    with pytest.raises(SystemExit) as exit_:
        main(["pcap", str(path), option, value])
    assert exit_.value.code == EXIT["usage"]
    assert "1-65535" in capsys.readouterr().err


def test_the_same_port_for_both_tunnels_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "good.pcap"
    path.write_bytes(GOOD_PCAP)
    code, packets, err = run_cli(capsys, path, "--vxlan-port", "6081")
    assert (code, packets) == (EXIT["usage"], [])
    assert len(err) == 1 and "both 6081" in err[0]


# --- a reader that goes away ---------------------------------------------------------------------


class _ClosedPipe:
    """stdout after the reader closed it, as seen from Python (which ignores SIGPIPE)."""

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stdout_ends_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "good.pcap"
    path.write_bytes(GOOD_PCAP)
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["pcap", str(path)]) == 141
    assert capsys.readouterr().err == ""


def test_piping_into_head_ends_without_a_traceback(tmp_path: Path) -> None:
    """What `| head -n 3` does: read three lines, then close the pipe while the writer is busy."""
    path = tmp_path / "many.pcap"
    path.write_bytes(pcap_bytes(FRAMES * 2000))  # far more JSON than a pipe buffers
    argv = [sys.executable, "-m", "verify", "pcap", str(path)]
    with subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        proc.stdout.close()
        err = proc.stderr.read()
        code = proc.wait(timeout=120)
    assert [json.loads(line)["index"] for line in lines] == [0, 1, 2]
    assert (code, err) == (141, "")
