# Wait until Cilium really is up: agents and operator rolled out, every node Ready, and the
# CRDs the operator registers at runtime Established (later Cilium resources depend on this).
# Environment: LAB_CONTROL_PLANE, LAB_CRDS (space-separated), LAB_TIMEOUT (seconds).
set -euo pipefail

kc() { docker exec -- "$LAB_CONTROL_PLANE" kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }
deadline=$((SECONDS + LAB_TIMEOUT))
left() { echo $((deadline - SECONDS > 1 ? deadline - SECONDS : 1)); }

echo "waiting for the Cilium agents (daemonset/cilium)..." >&2
kc -n kube-system rollout status daemonset/cilium --timeout="$(left)s" >&2
echo "waiting for the Cilium operator..." >&2
kc -n kube-system rollout status deployment/cilium-operator --timeout="$(left)s" >&2
echo "waiting for every node to be Ready..." >&2
kc wait --for=condition=Ready node --all --timeout="$(left)s" >&2

for crd in $LAB_CRDS; do
  until kc get crd "$crd" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "CRD $crd was never registered by the Cilium operator." >&2
      echo "look: kubectl -n kube-system logs deployment/cilium-operator" >&2
      exit 1
    fi
    sleep 2
  done
  kc wait --for=condition=Established --timeout="$(left)s" "crd/$crd" >&2
done
echo "Cilium is ready; CRDs established: $LAB_CRDS" >&2
