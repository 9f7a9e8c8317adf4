# Print the cluster's kubeconfig (host-reachable API address). The output is a secret: the
# program marks it so and this command logs only stderr. Environment: LAB_CLUSTER.
set -euo pipefail
kind get kubeconfig --name "$LAB_CLUSTER"
