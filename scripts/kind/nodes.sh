# Print the lab network's containers as JSON ({id: {Name, IPv4Address, ...}}), from which the
# program reads each node's underlay IP. Environment: LAB_NETWORK.
set -euo pipefail
docker network inspect --format '{{json .Containers}}' -- "$LAB_NETWORK"
