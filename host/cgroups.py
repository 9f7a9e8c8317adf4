"""Which cgroup version a host runs, read from its cgroup filesystem root (a parameter, so tests can
hand in a fake one).

Why it matters: from Kubernetes 1.35 the kubelet refuses to start on cgroup v1 unless its config sets
`failCgroupV1: false` (KEP-5573), and some hosts (this project's VMs among them) have cgroup v1
controllers only. The preflight says which the host is; the kind config patches the kubelet for v1.
"""

from __future__ import annotations

from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")

# Why the lab patches the kubelet on such a host: the preflight prints it.
V1_REASON = (
    "the kind config sets the kubelet's failCgroupV1: false, because Kubernetes 1.35 and later "
    "refuse cgroup v1 otherwise (KEP-5573)"
)


def cgroup_version(root: Path = CGROUP_ROOT) -> int | None:
    """2 when `root` is the unified hierarchy (it lists cgroup.controllers); 1 when it holds v1
    hierarchies (a directory with cgroup.procs besides the hybrid layout's controller-less
    `unified`); None when neither can be read."""
    try:
        if (root / "cgroup.controllers").is_file():
            return 2
        for child in root.iterdir():
            if child.name != "unified" and (child / "cgroup.procs").is_file():
                return 1
    except OSError:
        return None
    return None
