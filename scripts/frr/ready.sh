# Wait until an FRR router has read its configuration, then fail if FRR rejected any line of it.
# FRR skips a line it cannot parse, logs it, and keeps running: a lab that peers anyway would be
# proving a configuration other than the one rendered. Both FRR versions the lab runs log such a
# line as `... on config line <n>: <text>` (lib/vty.c, FRR 8.4: "ERROR: No such command on config
# line 3: foo"; 10.x without the ERROR: prefix), which this reads from the container's log.
# Environment: LAB_ROUTER (the router container), LAB_TIMEOUT (seconds).
set -euo pipefail

rejected() {
  docker logs "$LAB_ROUTER" 2>&1 | grep -E 'on config line [0-9]+: ' || true
}

deadline=$((SECONDS + LAB_TIMEOUT))
echo "waiting for FRR on $LAB_ROUTER to read /etc/frr/frr.conf ..." >&2
until docker exec "$LAB_ROUTER" vtysh -c 'show running-config' 2>/dev/null | grep -q '^router bgp '; do
  if [[ -n "$(rejected)" ]] || (( SECONDS >= deadline )); then
    break
  fi
  sleep 1
done

lines=$(rejected)
if [[ -n "$lines" ]]; then
  echo "FRR on $LAB_ROUTER rejected lines of its configuration at startup (it runs without them):" >&2
  while IFS= read -r line; do echo "  $line" >&2; done <<< "$lines"
  echo "fix: the rendered config (frr/frr.conf.j2) must use only commands this FRR version accepts" >&2
  exit 1
fi
if ! docker exec "$LAB_ROUTER" vtysh -c 'show running-config' 2>/dev/null | grep -q '^router bgp '; then
  echo "FRR on $LAB_ROUTER has no BGP instance after ${LAB_TIMEOUT}s; its log ends with:" >&2
  docker logs --tail 30 "$LAB_ROUTER" 2>&1 | sed 's/^/  /' >&2
  exit 1
fi
echo "FRR on $LAB_ROUTER runs its whole configuration (no line rejected)" >&2
