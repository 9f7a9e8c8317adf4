# Load images this machine built (the offline switch, lab/offline.py) into every node of the lab's
# kind cluster: nothing in a node is ever pulled on a machine with no registry.
# Environment: LAB_CLUSTER, LAB_IMAGES (space-separated <repository>:<tag>, validated by the program).
set -euo pipefail
read -r -a images <<< "$LAB_IMAGES"
for image in "${images[@]}"; do
  if ! docker image inspect -- "$image" >/dev/null 2>&1; then
    echo "the image $image is not in the Docker engine, and on this machine nothing is pulled." >&2
    echo "fix: make supply   (builds and imports what is missing)" >&2
    exit 1
  fi
done
started=$SECONDS
echo "loading ${#images[@]} image(s) built on this machine into the nodes of $LAB_CLUSTER: ${images[*]} ..." >&2
kind load docker-image --name "$LAB_CLUSTER" -- "${images[@]}" >&2
echo "loaded into every node of $LAB_CLUSTER in $((SECONDS - started)) s" >&2
