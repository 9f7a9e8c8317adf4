# Make the FRR router image's root filesystem in an empty directory: Debian's frr and tini laid
# out where the upstream image has them. Run as root by supply/frr_image.py:
#   bash rootfs.sh TARGET SUITE MIRROR PACKAGE[,PACKAGE...]
set -o errexit -o nounset -o pipefail

target=$1 suite=$2 mirror=$3 packages=$4
here=$(dirname -- "$(readlink -f -- "$0")")
[[ -d "$target" && -z "$(ls -A -- "$target")" ]] || { echo "rootfs.sh: $target is not an empty directory" >&2; exit 1; }

debootstrap --variant=minbase --include="$packages" "$suite" "$target" "$mirror"

# The upstream image's paths: tini at /sbin/tini, the start script at /usr/lib/frr/docker-start.
ln -sf /usr/bin/tini "$target/sbin/tini"
install -m 0755 -- "$here/docker-start" "$target/usr/lib/frr/docker-start"
for tool in tini watchfrr zebra bgpd vtysh; do
  [[ -x "$target/usr/bin/$tool" || -x "$target/usr/lib/frr/$tool" ]] || { echo "rootfs.sh: no $tool in the rootfs" >&2; exit 1; }
done

# Nothing of apt's or debootstrap's is needed at run time; no documentation either.
rm -rf "$target"/var/cache/apt/archives/*.deb "$target"/var/lib/apt/lists/* "$target"/debootstrap \
  "$target"/usr/share/doc "$target"/usr/share/man "$target"/usr/share/info "$target"/usr/share/locale
