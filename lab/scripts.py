"""Shell scripts that pulumi-command runs, kept as files under scripts/.

A script's text is a resource input: reading it here (not a path to it) keeps inputs
machine-independent and makes `pulumi preview --diff` show a changed script line by line.
Scripts take every value from environment variables, so no config value is ever spliced into
shell text.
"""

from __future__ import annotations

from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
# bash -c <script>: values arrive as environment variables, the script is fixed text.
INTERPRETER = ["/bin/bash", "-c"]


def script(name: str) -> str:
    """The text of scripts/<name>.sh."""
    path = SCRIPTS / f"{name}.sh"
    return path.read_text()
