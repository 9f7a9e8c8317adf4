# Load images this machine built (the offline switch, lab/offline.py) into every node of the lab's
# kind cluster: nothing in a node is ever pulled on a machine with no registry. The preloaded node
# image (supply/preloaded_node.py) already holds them: a node that lists an image by its name and
# by the engine's image ID is left alone, and only what some node lacks is loaded, into those nodes.
# Environment: LAB_CLUSTER, LAB_IMAGES (space-separated <repository>:<tag>, validated by the program).
set -euo pipefail
read -r -a images <<< "$LAB_IMAGES"
declare -A image_id
for image in "${images[@]}"; do
  if ! image_id[$image]=$(docker image inspect --format '{{.Id}}' -- "$image" 2>/dev/null); then
    echo "the image $image is not in the Docker engine, and on this machine nothing is pulled." >&2
    echo "fix: make supply   (builds and imports what is missing)" >&2
    exit 1
  fi
done

# How containerd names an image Docker calls <repository>:<tag> (no registry host: Docker Hub's).
containerd_ref() {
  if [[ "$1" == */* ]]; then echo "docker.io/$1"; else echo "docker.io/library/$1"; fi
}

started=$SECONDS
mapfile -t nodes < <(kind get nodes --name "$LAB_CLUSTER")
(( ${#nodes[@]} > 0 )) || { echo "the kind cluster $LAB_CLUSTER has no nodes" >&2; exit 1; }
lacking_nodes=() lacking_images=()
for node in "${nodes[@]}"; do
  refs=$(docker exec "$node" ctr --namespace k8s.io images ls --quiet)
  lacks=0
  for image in "${images[@]}"; do
    if ! grep -qxF -- "$(containerd_ref "$image")" <<< "$refs" || ! grep -qxF -- "${image_id[$image]}" <<< "$refs"; then
      lacks=1
      [[ " ${lacking_images[*]} " == *" $image "* ]] || lacking_images+=("$image")
    fi
  done
  (( lacks )) && lacking_nodes+=("$node")
done

if (( ${#lacking_nodes[@]} == 0 )); then
  echo "every node of $LAB_CLUSTER already holds ${images[*]} (preloaded in its node image): nothing to load" >&2
  exit 0
fi
nodes_csv=$(IFS=,; echo "${lacking_nodes[*]}")
echo "loading ${lacking_images[*]} into $nodes_csv ..." >&2
kind load docker-image --name "$LAB_CLUSTER" --nodes "$nodes_csv" -- "${lacking_images[@]}" >&2
echo "loaded into ${#lacking_nodes[@]} node(s) of $LAB_CLUSTER in $((SECONDS - started)) s" >&2
