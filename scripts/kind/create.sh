# Create the lab's kind cluster on the lab's own Docker network.
# Environment: LAB_CLUSTER, LAB_NETWORK, LAB_KUBECONFIG, and LAB_LOCAL_IMAGE for a node image
# built on this host. The kind config arrives on stdin.
# Run by pulumi-command with bash -c; every value comes from the environment, never from
# text spliced into this script.
set -euo pipefail

# Listed first, then matched: `grep -q` in a pipe can SIGPIPE kind, which pipefail would count.
clusters=$(kind get clusters 2>/dev/null || true)
if grep -qxF -- "$LAB_CLUSTER" <<< "$clusters"; then
  echo "a kind cluster named $LAB_CLUSTER already exists outside this stack's state." >&2
  echo "fix: kind delete cluster --name $LAB_CLUSTER   (or pick another cilium-datapath-lab:clusterName)" >&2
  exit 1
fi

# A node image built on this host (nodeImage local:<tag> or an image ID) is never pulled: say so
# here, naming the key, rather than let kind look for it in a registry.
if [ -n "${LAB_LOCAL_IMAGE:-}" ] && ! docker image inspect -- "$LAB_LOCAL_IMAGE" >/dev/null 2>&1; then
  echo "the node image $LAB_LOCAL_IMAGE (cilium-datapath-lab:nodeImage) is not in the Docker engine, and a local image is never pulled." >&2
  echo "fix: make images, then set cilium-datapath-lab:nodeImage to the local:<tag> it prints" >&2
  exit 1
fi

mkdir -p -- "$(dirname -- "$LAB_KUBECONFIG")"
echo "creating kind cluster $LAB_CLUSTER on docker network $LAB_NETWORK (a cold image pull takes minutes)..." >&2
# kind removes half-created nodes itself when creation fails (no --retain).
KIND_EXPERIMENTAL_DOCKER_NETWORK="$LAB_NETWORK" \
  kind create cluster --name "$LAB_CLUSTER" --config - --kubeconfig "$LAB_KUBECONFIG" --wait 0s >&2
echo "kind cluster $LAB_CLUSTER created; nodes stay NotReady until Cilium is installed" >&2
