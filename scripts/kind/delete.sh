# Delete the lab's kind cluster. Idempotent: a cluster that is already gone is not an error,
# so `pulumi destroy` works after the cluster was removed out of band.
# Environment: LAB_CLUSTER, LAB_KUBECONFIG.
set -euo pipefail

clusters=$(kind get clusters 2>/dev/null || true)  # listed first: no SIGPIPE under pipefail
if grep -qxF -- "$LAB_CLUSTER" <<< "$clusters"; then
  echo "deleting kind cluster $LAB_CLUSTER..." >&2
  kind delete cluster --name "$LAB_CLUSTER" --kubeconfig "$LAB_KUBECONFIG" >&2
else
  echo "kind cluster $LAB_CLUSTER is already gone" >&2
fi
rm -f -- "$LAB_KUBECONFIG"
