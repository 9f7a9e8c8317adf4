# Write each node's spec.podCIDR from the lab's address plan, so Cilium (ipam.mode=kubernetes)
# uses exactly the CIDRs `pulumi preview` showed. podCIDR is immutable once set: a node that
# already holds a different one is an error, not something to paper over.
# Environment: LAB_CONTROL_PLANE (container name), LAB_POD_CIDRS ("node=cidr node=cidr ...").
set -euo pipefail

kc() { docker exec -- "$LAB_CONTROL_PLANE" kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }

for pair in $LAB_POD_CIDRS; do
  node=${pair%%=*}
  cidr=${pair#*=}
  # `kind create --wait 0s` may return before every node has registered.
  tries=0
  until kc get node "$node" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
      echo "node $node never registered with the API server; look: docker logs $node" >&2
      exit 1
    fi
    sleep 2
  done
  current=$(kc get node "$node" -o 'jsonpath={.spec.podCIDR}')
  if [ "$current" = "$cidr" ]; then
    echo "$node: podCIDR $cidr (already set)" >&2
    continue
  fi
  if [ -n "$current" ]; then
    echo "$node holds podCIDR $current but the plan says $cidr; podCIDR is immutable." >&2
    echo "fix: replace the cluster (pulumi up --replace on its KindCluster) or restore the old podCidr config" >&2
    exit 1
  fi
  kc patch node "$node" --type merge -p "{\"spec\":{\"podCIDR\":\"$cidr\",\"podCIDRs\":[\"$cidr\"]}}" >&2
  echo "$node: podCIDR $cidr" >&2
done
