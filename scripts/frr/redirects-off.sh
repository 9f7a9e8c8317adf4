# The FRR router container's entrypoint, run by the image's POSIX /bin/sh as
#   sh -c <this text> redirects-off <the image's own start command...>
# It turns ICMP redirects off on every IPv4 interface of the container, then execs the start
# command (which keeps PID 1 for the image's init). The router forwards node-to-node traffic
# back onto the network it came from; the kernel sends a redirect when `all` OR the interface
# says so, and Docker moves the lab interface in with send_redirects=1 whatever `default` says
# at create. Docker mounts /proc/sys read-only, so it is remounted read-write for the writes
# (CAP_SYS_ADMIN; AppArmor's docker-default profile denies mount) and read-only again after.
# This works on every Docker Engine, unlike the per-endpoint sysctl (Engine 27.0+) or an
# `eth0` container sysctl (refused from Engine 28.0). Runs at every start: a restarted
# container has a new network namespace.

fail() {
  echo "redirects-off: $*; ICMP redirects stay on, so the router will not start" >&2
  exit 1
}

[ "$#" -gt 0 ] || fail "no start command given"
mount -o remount,rw /proc/sys || fail "cannot remount /proc/sys read-write (needs CAP_SYS_ADMIN, AppArmor unconfined)"
for setting in /proc/sys/net/ipv4/conf/*/send_redirects; do
  echo 0 >"$setting" || fail "cannot write $setting"
done
mount -o remount,ro /proc/sys || fail "cannot remount /proc/sys read-only again"
for setting in /proc/sys/net/ipv4/conf/*/send_redirects; do
  value=
  # A shell's read takes a byte at a time, and a sysctl file ends after the first read: the
  # value arrives without its newline, so read's status says nothing.
  read -r value <"$setting" || :
  [ "$value" = 0 ] || fail "$setting is ${value:-unreadable}, not 0"
done
exec "$@"
