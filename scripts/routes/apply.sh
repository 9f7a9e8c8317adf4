# Install one node's declared routes (StaticRouteSet create and update).
# Environment: LAB_NODE (kind node container), LAB_ROUTES (one route per line, `ip route`
# syntax: "10.10.0.32/27 via 172.30.4.3"). On update, PULUMI_COMMAND_STDOUT holds the routes the
# previous run installed: those no longer declared are removed first. Prints what it installed,
# which Pulumi keeps as this resource's stdout (and hands to the next update or delete).
set -euo pipefail

valid() { case "$1" in *[!0-9a-z./\ ]*|"") return 1 ;; esac; }
node_ip() { docker exec -- "$LAB_NODE" ip "$@"; }

while IFS= read -r old; do
  [ -n "$old" ] || continue
  # A here-string, not `printf | grep -q`: grep stopping early must not SIGPIPE the writer.
  if ! grep -qxF -- "$old" <<< "$LAB_ROUTES"; then
    valid "$old" || { echo "refusing route line: $old" >&2; exit 2; }
    read -ra words <<< "$old"  # a route line is ip-route words: split on blanks, never globbed
    if node_ip route del "${words[@]}" 2>/dev/null; then
      echo "$LAB_NODE: removed $old" >&2
    else
      echo "$LAB_NODE: $old was already gone" >&2
    fi
  fi
done <<< "${PULUMI_COMMAND_STDOUT:-}"

while IFS= read -r line; do
  [ -n "$line" ] || continue
  valid "$line" || { echo "refusing route line: $line" >&2; exit 2; }
  read -ra words <<< "$line"
  node_ip route replace "${words[@]}"
  echo "$LAB_NODE: ip route replace $line" >&2
  echo "$line"
done <<< "$LAB_ROUTES"
