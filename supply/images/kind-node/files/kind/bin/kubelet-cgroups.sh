#!/bin/bash
# Run by the kubelet unit before every start, once systemd is up: the kubelet's cgroup roots
# (cgroupRoot /kubelet, which the systemd driver names kubelet.slice) must exist everywhere.
set -o errexit -o nounset -o pipefail

if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  # v2: systemd has moved every process out of the root cgroup, so controllers can be enabled for
  # the children now (not in the entrypoint, while it still runs in the root cgroup).
  enable_all() { sed -e 's/^/+/' -e 's/ / +/g' "/sys/fs/cgroup/$1/cgroup.controllers" >"/sys/fs/cgroup/$1/cgroup.subtree_control"; }
  enable_all /
  for root in kubelet kubelet.slice; do
    mkdir -p "/sys/fs/cgroup/$root"
    enable_all "$root"
  done
  exit 0
fi

# v1: in every hierarchy, also those systemd mounted after the entrypoint ran (hugetlb, perf_event,
# net_cls,net_prio where the host mounts none). cpuset children start empty: give them the parent's.
for hierarchy in $(findmnt --raw --noheadings --types cgroup --output TARGET); do
  for root in kubelet kubelet.slice; do
    mkdir -p "$hierarchy/$root"
    if [[ -f "$hierarchy/cpuset.cpus" && -z "$(cat "$hierarchy/$root/cpuset.cpus")" ]]; then
      cat "$hierarchy/cpuset.cpus" >"$hierarchy/$root/cpuset.cpus"
      cat "$hierarchy/cpuset.mems" >"$hierarchy/$root/cpuset.mems"
    fi
  done
done
