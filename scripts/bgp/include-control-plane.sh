# Let the control plane advertise LoadBalancer IPs like every other node. kubeadm labels control
# planes node.kubernetes.io/exclude-from-external-load-balancers, which load-balancer
# implementations may honour; the lab's claim is one ECMP path per node, so the label goes.
# Idempotent. Environment: LAB_CONTROL_PLANE.
set -euo pipefail

kc() { docker exec -- "$LAB_CONTROL_PLANE" kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }
label=node.kubernetes.io/exclude-from-external-load-balancers
# Read first, then matched: `kubectl | grep -q` can SIGPIPE kubectl, which pipefail would count
# as no match; and a kubectl that fails stops here (set -e) instead of looking like no label.
labels=$(kc get node "$LAB_CONTROL_PLANE" --show-labels --no-headers)
if grep -qF -- "$label" <<< "$labels"; then
  kc label node "$LAB_CONTROL_PLANE" "$label-" >&2
else
  echo "$LAB_CONTROL_PLANE does not carry $label" >&2
fi
