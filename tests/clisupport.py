"""What the supply CLIs' tests share (toolchain, node_image, cilium_images): each CLI refuses to
run without a command, prints its help, and reports a failed build in one line with exit 1."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType

import pytest

Main = Callable[[Sequence[str] | None], int]


def help_text(main: Main, capsys: pytest.CaptureFixture[str]) -> str:
    """The CLI's `--help`, on one line, after checking that no command is a usage error (exit 2)."""
    with pytest.raises(SystemExit) as refused:
        main([])
    assert refused.value.code == 2
    with pytest.raises(SystemExit):
        main(["--help"])
    return " ".join(capsys.readouterr().out.split())


def failed_build(
    module: ModuleType, error: Exception, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[str, str]:
    """What `main(["build"])` prints when the module's build() raises `error`; it must exit 1."""

    def fail() -> None:
        raise error

    monkeypatch.setattr(module, "build", fail)
    assert module.main(["build"]) == 1
    out = capsys.readouterr()
    return out.out, out.err
