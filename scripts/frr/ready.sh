# Wait until an FRR router has read its configuration, then fail if FRR rejected any line of it.
# FRR skips a line it cannot parse, logs it, and keeps running: a lab that peers anyway would be
# proving a configuration other than the one rendered. This reads the container's log for the
# ways FRR reports such a line:
# - `vtysh -b`, which applies /etc/frr/frr.conf when watchfrr starts the daemons (both images'
#   docker-start): "line 9: % Unknown command[25]:  neighbor NODES bogus-knob 3", then
#   "Configuration file[/etc/frr/frr.conf] processing failure: 2" (seen with Debian's FRR 8.4);
# - a daemon reading the file itself (lib/vty.c): "ERROR: No such command on config line 9: ..."
#   (8.x), or the same without "ERROR: " (10.x).
# Environment: LAB_ROUTER (the router container), LAB_TIMEOUT (seconds).
set -euo pipefail

# Read first, then matched: `docker ... | grep -q` can SIGPIPE docker once grep has its match,
# which pipefail would count as a failure (a router running its BGP instance said to run none).
router_log() {
  docker logs "$LAB_ROUTER" 2>&1 || true
}
rejected() {
  grep -E '^line [0-9]+: %|on config line [0-9]+: |^Configuration file\[.*\] processing failure' \
    <<< "$(router_log)" || true
}
daemons_up() {
  grep -q 'all daemons up' <<< "$(router_log)"
}
runs_bgp() {
  local config
  config=$(docker exec "$LAB_ROUTER" vtysh -c 'show running-config' 2>/dev/null) || return 1
  grep -q '^router bgp ' <<< "$config"
}

# Every rejection is in the log once the daemons are up and the command watchfrr forked to start
# them (`watchfrr.sh restart all`, which applies frr.conf with `vtysh -b`) has ended: watchfrr may
# say "all daemons up" before that. The image has no pgrep: the command is looked for in /proc
# (the pattern's brackets keep the search from finding itself).
restarting() {
  docker exec "$LAB_ROUTER" sh -c 'grep -qs "watchfrr[.]sh" /proc/[0-9]*/cmdline'
}
deadline=$((SECONDS + LAB_TIMEOUT))
echo "waiting for FRR on $LAB_ROUTER to start its daemons and read /etc/frr/frr.conf ..." >&2
until daemons_up && ! restarting; do
  (( SECONDS < deadline )) || break
  sleep 1
done

lines=$(rejected)
if [[ -n "$lines" ]]; then
  echo "FRR on $LAB_ROUTER rejected lines of its configuration at startup (it runs without them):" >&2
  while IFS= read -r line; do echo "  $line" >&2; done <<< "$lines"
  echo "fix: the rendered config (frr/frr.conf.j2) must use only commands this FRR version accepts" >&2
  exit 1
fi
if ! runs_bgp; then
  echo "FRR on $LAB_ROUTER runs no BGP instance (waited up to ${LAB_TIMEOUT}s); its log ends with:" >&2
  docker logs --tail 30 "$LAB_ROUTER" 2>&1 | sed 's/^/  /' >&2
  exit 1
fi
echo "FRR on $LAB_ROUTER runs its whole configuration (no line rejected)" >&2
