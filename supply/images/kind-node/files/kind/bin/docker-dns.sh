#!/bin/bash
# Pod DNS on a node that sits on a user-defined Docker network (the lab's nodes always do).
#
# Why: Docker gives such a container its embedded DNS server, `nameserver 127.0.0.11` in
# /etc/resolv.conf, reachable only inside the node's own network namespace: Docker installs NAT rules
# there (chain DOCKER_OUTPUT) that send 127.0.0.11:53 to the resolver's real ports. The kubelet hands
# the node's resolv.conf to pods with dnsPolicy Default, CoreDNS among them, and inside a pod's
# namespace 127.0.0.11 is the pod itself: CoreDNS forwards to itself and stops with "plugin/loop: Loop
# detected". So at boot the node makes the same resolver answer on its own IPv4 on the Docker network
# (read at boot: Docker assigns it), which pods reach through the node's namespace, and names that IP
# in resolv.conf. A DNAT to 127.0.0.11 from a non-loopback interface needs route_localnet; the filter
# rule below drops every other packet for 127.0.0.0/8 that does not arrive on lo, so that setting
# opens nothing else.
#
#   docker-dns.sh rules NODE_IP  <nat-table   iptables-restore --noflush input (stdin: iptables-save -t nat)
#   docker-dns.sh resolv NODE_IP <resolv.conf the node's new resolv.conf (stdin: the current one)
#   docker-dns.sh apply                       both, for real, with the node's IP (the entrypoint runs it)
# `rules` and `resolv` exit 1 when there is nothing to do: no Docker DNS rules, no 127.0.0.11.
set -o errexit -o nounset -o pipefail

readonly DOCKER_DNS=127.0.0.11 CHAIN=CDL-DOCKER-DNS
# Marks the nameserver line this script wrote: Docker keeps a resolv.conf the container changed, so
# after a restart (new resolver ports, maybe a new IP) that line is rewritten like 127.0.0.11 is.
readonly MARK="# cdl-node: Docker's embedded DNS ($DOCKER_DNS) on this node's IP (/kind/bin/docker-dns.sh)"

say() { echo "cdl-node: $*" >&2; }

ipv4() {
  local octet
  [[ $1 =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || return 1
  for octet in ${1//./ }; do ((10#$octet <= 255)) || return 1; done
}

# Docker's DNAT ports for 127.0.0.11:53, e.g.
#   -A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:53199
rules() {
  local ip=$1 line udp="" tcp="" port
  ipv4 "$ip" || { say "not an IPv4 address: $ip"; return 2; }
  while IFS= read -r line; do
    [[ $line == "-A DOCKER_OUTPUT "* && $line == *" -d $DOCKER_DNS/32 "* && $line == *" --dport 53 "* ]] || continue
    [[ $line =~ " -j DNAT --to-destination 127.0.0.11:"([0-9]+)$ ]] || continue
    port=${BASH_REMATCH[1]}
    case $line in
      *" -p udp "*) udp=$port ;;
      *" -p tcp "*) tcp=$port ;;
    esac
  done
  [[ -n $udp && -n $tcp ]] || return 1
  cat <<EOF
*nat
:$CHAIN - [0:0]
-A PREROUTING -d $ip/32 -j $CHAIN
-A OUTPUT -d $ip/32 -j $CHAIN
-A $CHAIN -p udp -m udp --dport 53 -j DNAT --to-destination $DOCKER_DNS:$udp
-A $CHAIN -p tcp -m tcp --dport 53 -j DNAT --to-destination $DOCKER_DNS:$tcp
COMMIT
*filter
:$CHAIN - [0:0]
-A INPUT -d 127.0.0.0/8 ! -i lo -j $CHAIN
-A $CHAIN -m conntrack --ctstate DNAT -j RETURN
-A $CHAIN -j DROP
COMMIT
EOF
}

resolv() {
  local ip=$1 line ours=0 changed=0 out=""
  ipv4 "$ip" || { say "not an IPv4 address: $ip"; return 2; }
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line == "$MARK" ]]; then
      ours=1
      continue
    fi
    if [[ $line =~ ^nameserver[[:space:]]+([^[:space:]]+)[[:space:]]*$ ]] &&
      [[ ${BASH_REMATCH[1]} == "$DOCKER_DNS" || $ours == 1 ]]; then
      out+="$MARK"$'\n'"nameserver $ip"$'\n'
      changed=1
    else
      out+="$line"$'\n'
    fi
    ours=0
  done
  ((changed)) || return 1
  printf '%s' "$out"
}

# The IPv4 address on the interface of the default route: the node's address on the Docker network.
node_ip() {
  local route dev addr
  route=$(ip -4 route show default)
  [[ $route =~ " dev "([^[:space:]]+) ]] || { say "no default route: $route"; return 1; }
  dev=${BASH_REMATCH[1]}
  addr=$(ip -4 -o addr show dev "$dev" scope global)
  [[ $addr =~ " inet "([0-9.]+)/ ]] || { say "no IPv4 address on $dev"; return 1; }
  echo "${BASH_REMATCH[1]}"
}

apply() {
  local ip nat new_rules new_resolv
  ip=$(node_ip)
  if ! new_resolv=$(resolv "$ip" </etc/resolv.conf); then
    say "DNS: /etc/resolv.conf does not name Docker's embedded DNS; left as it is"
    return 0
  fi
  nat=$(iptables-save -t nat)
  if ! new_rules=$(rules "$ip" <<<"$nat"); then
    say "DNS: resolv.conf names $DOCKER_DNS but this namespace has no Docker DNS rules; left as it is"
    return 0
  fi
  iptables-restore --noflush <<<"$new_rules"
  echo 1 >/proc/sys/net/ipv4/conf/all/route_localnet
  # Written in place: Docker bind-mounts the file.
  printf '%s\n' "$new_resolv" >/etc/resolv.conf
  say "DNS: Docker's embedded DNS also answers on $ip:53; resolv.conf names $ip"
}

case ${1:-} in
  rules | resolv) [[ $# == 2 ]] || { say "usage: $0 $1 NODE_IP"; exit 2; }; "$1" "$2" ;;
  apply) apply ;;
  *) say "usage: $0 rules NODE_IP | resolv NODE_IP | apply"; exit 2 ;;
esac
