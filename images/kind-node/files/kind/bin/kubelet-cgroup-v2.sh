#!/bin/bash
# cgroup v2 only, run by the kubelet unit once systemd has moved every process out of the root
# cgroup: enable every controller for the kubelet's cgroup roots (/kubelet, kubelet.slice), which
# the kubelet expects to exist.
set -o errexit -o nounset -o pipefail
enable_all() { sed -e 's/^/+/' -e 's/ / +/g' "/sys/fs/cgroup/$1/cgroup.controllers" >"/sys/fs/cgroup/$1/cgroup.subtree_control"; }
enable_all /
for root in kubelet kubelet.slice; do
  mkdir -p "/sys/fs/cgroup/$root"
  enable_all "$root"
done
