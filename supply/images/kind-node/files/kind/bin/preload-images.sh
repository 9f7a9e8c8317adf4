#!/bin/bash
# Import every image tar under /kind/images into containerd for the kubelet (namespace k8s.io).
set -o errexit -o nounset -o pipefail
for tar in /kind/images/*.tar; do
  ctr --namespace k8s.io images import "$tar" >/dev/null
  echo "loaded $tar"
done
