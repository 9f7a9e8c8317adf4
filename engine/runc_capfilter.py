#!/usr/bin/python3 -IS
"""runc wrapper that drops capabilities the host's bounding set lacks, then runs the real runc.

Why it exists: on some VMs (this project's machines among them) even root runs without
CAP_SYS_RESOURCE in its capability bounding set. `docker run --privileged`, which kind uses for every
node, asks runc for every capability the kernel knows, and runc fails with "unable to apply caps:
operation not permitted". engine/dockerd.sh registers this file as dockerd's default runtime: on
`create`/`run` it removes from the bundle's config.json, and on `exec` from the `--process` JSON, each
capability whose bit is clear in /proc/self/status CapBnd, then execs runc with the argv unchanged.
A capability outside the bounding set can never be held, so nothing a container could have is lost.
On a host with the full bounding set no file is rewritten and the argv passes through as it came.

Plain python3 with the standard library only (python3 -I -S: no site-packages, no environment).
Set RUNC_CAPFILTER_RUNC to the real runc; otherwise the first `runc` on PATH that is not this file.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

# Linux capability numbers (include/uapi/linux/capability.h). A name not listed here is left alone.
CAP_NUMBERS = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}
CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
# runc's global options that take a value (`runc --help`, runc 1.1); the rest are switches.
GLOBAL_VALUE_OPTIONS = frozenset({"--root", "--log", "--log-format", "--criu", "--rootless"})
FILTERED_COMMANDS = frozenset({"create", "run", "exec"})


def bounding_mask(status_text: str) -> int:
    """The CapBnd bit mask from the text of /proc/<pid>/status."""
    for line in status_text.splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split(":", 1)[1].strip(), 16)
    raise ValueError("no CapBnd line in the process status")


def allowed(name: str, mask: int) -> bool:
    """False only for a capability we know whose bit the bounding set lacks."""
    number = CAP_NUMBERS.get(name)
    return number is None or bool(mask >> number & 1)


def filter_capabilities(capabilities: dict[str, Any], mask: int) -> list[str]:
    """Remove disallowed names from every set in an OCI `capabilities` object; the names removed."""
    dropped: list[str] = []
    for set_name in CAP_SETS:
        names = capabilities.get(set_name)
        if not isinstance(names, list):
            continue
        kept = [n for n in names if not isinstance(n, str) or allowed(n, mask)]
        if len(kept) != len(names):
            capabilities[set_name] = kept
            for name in names:
                if name not in kept and name not in dropped:
                    dropped.append(name)
    return dropped


def subcommand(argv: list[str]) -> tuple[int, str] | None:
    """Index and name of runc's command in argv (argv[0] is the program), skipping global options."""
    i = 1
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            return i, arg
        name = "--" + arg.lstrip("-")
        i += 2 if "=" not in arg and name in GLOBAL_VALUE_OPTIONS else 1
    return None


def option_value(args: list[str], long: str, short: str) -> str | None:
    """The value of `--long X`, `--long=X`, `-short X` or `-short=X` (also `-long`), else None."""
    spellings = (f"--{long}", f"-{long}", f"-{short}")
    for i, arg in enumerate(args):
        if arg == "--":
            return None
        if arg in spellings:
            return args[i + 1] if i + 1 < len(args) else None
        for spelling in spellings:
            if arg.startswith(spelling + "="):
                return arg[len(spelling) + 1 :]
    return None


def target(argv: list[str], cwd: str) -> tuple[str, tuple[str, ...]] | None:
    """The JSON file runc will read capabilities from, and the key path to them; None if no such file."""
    found = subcommand(argv)
    if found is None or found[1] not in FILTERED_COMMANDS:
        return None
    index, command = found
    args = argv[index + 1 :]
    if command == "exec":
        process = option_value(args, "process", "p")
        return (process, ("capabilities",)) if process else None
    bundle = option_value(args, "bundle", "b") or cwd
    return os.path.join(bundle, "config.json"), ("process", "capabilities")


def filter_file(path: str, keys: tuple[str, ...], mask: int) -> list[str]:
    """Drop disallowed capabilities from the JSON file in place; it is rewritten only if one was dropped."""
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    node: Any = document
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return []
    dropped = filter_capabilities(node, mask)
    if dropped:
        temporary = f"{path}.capfilter.{os.getpid()}"
        try:
            with open(temporary, "w", encoding="utf-8") as f:
                json.dump(document, f)
            os.chmod(temporary, os.stat(path).st_mode & 0o7777)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    return dropped


def real_runc() -> str:
    """RUNC_CAPFILTER_RUNC, else the first executable `runc` on PATH that is not this wrapper."""
    explicit = os.environ.get("RUNC_CAPFILTER_RUNC")
    if explicit:
        return explicit
    me = os.path.realpath(__file__)
    for directory in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(os.pathsep):
        candidate = os.path.join(directory or ".", "runc")
        if os.access(candidate, os.X_OK) and os.path.realpath(candidate) != me:
            return candidate
    raise SystemExit("runc-capfilter: no runc on PATH (install Debian's runc, or set RUNC_CAPFILTER_RUNC)")


def main(argv: list[str]) -> None:
    found = target(argv, os.getcwd())
    if found is not None:
        path, keys = found
        try:
            with open("/proc/self/status", encoding="ascii") as f:
                mask = bounding_mask(f.read())
            filter_file(path, keys, mask)
        except (OSError, ValueError) as error:
            # Leave the file as it is: runc then reports the real problem (missing bundle, bad JSON).
            print(f"runc-capfilter: not filtering {path}: {error}", file=sys.stderr)
    runc = real_runc()
    os.execv(runc, [runc, *argv[1:]])  # noqa: S606 -- becoming runc, argv untouched, is the point


if __name__ == "__main__":
    main(sys.argv)
