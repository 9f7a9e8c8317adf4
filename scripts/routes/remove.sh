# Remove exactly the routes this StaticRouteSet installed (its delete command). Idempotent:
# a route, or the whole node, already gone is not an error, so `pulumi destroy` always finishes.
# Environment: LAB_NODE, LAB_ROUTES (as installed: the resource's last inputs).
set -euo pipefail

valid() { case "$1" in *[!0-9a-z./\ ]*|"") return 1 ;; esac; }

if ! docker exec -- "$LAB_NODE" true 2>/dev/null; then
  echo "$LAB_NODE is gone; its routes went with it" >&2
  exit 0
fi
while IFS= read -r line; do
  [ -n "$line" ] || continue
  valid "$line" || { echo "refusing route line: $line" >&2; exit 2; }
  read -ra words <<< "$line"  # a route line is ip-route words: split on blanks, never globbed
  if docker exec -- "$LAB_NODE" ip route del "${words[@]}" 2>/dev/null; then
    echo "$LAB_NODE: removed $line" >&2
  else
    echo "$LAB_NODE: $line was already gone" >&2
  fi
done <<< "$LAB_ROUTES"
