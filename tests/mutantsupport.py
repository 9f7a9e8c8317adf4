"""What the tests/test_mutants_verify_*.py files share: a probe that keeps timeouts, and the shape
of a capture's evidence."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from fakeprobe import FakeProbe, World

from verify.checks import Evidence
from verify.pcap import analyze
from verify.probe import CommandResult

T = TypeVar("T")


class TimedProbe(FakeProbe):
    """A FakeProbe that also keeps the timeout of each pod command and capture, in order."""

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.timeouts: list[tuple[str, float]] = []

    def pod_exec(self, pod: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        self.timeouts.append((f"pod {pod} {argv[0]}", timeout))
        return super().pod_exec(pod, argv, timeout)

    def capture(
        self,
        node: str,
        interface: str,
        bpf_filter: str,
        traffic: Callable[[], T],
        out: Path,
        count: int | None = None,
        timeout: float = 10.0,
    ) -> tuple[Path, T]:
        self.timeouts.append((f"capture {node} {interface}", timeout))
        return super().capture(node, interface, bpf_filter, traffic, out, count, timeout)


def capture_filter(e: Evidence, node: str, iface: str, check_id: str, artifacts: Path) -> str:
    """The bpf filter of a capture's evidence, after checking its every other field."""
    bpf = e.label.removeprefix(f"capture on {node} {iface} (").removesuffix(")")
    assert e.label == f"capture on {node} {iface} ({bpf})"
    assert e.command == f"tcpdump -i {iface} {bpf}"
    assert e.artifact == str(artifacts / f"{check_id}-{node}-{iface}.pcap")
    assert e.output == f"{len(analyze(e.artifact))} packets"
    return bpf
