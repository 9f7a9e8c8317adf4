# Make the Cilium agent image's root filesystem in an empty directory, as Cilium's own
# images/cilium/Dockerfile lays it out, from Debian packages and the binaries `make cilium-images`
# built. Run as root by supply/cilium_images.py:
#   bash rootfs.sh TARGET SUITE MIRROR PACKAGE[,PACKAGE...] MODULE_DIR BIN_DIR [BACKPORT[,BACKPORT...]]
# MODULE_DIR is github.com/cilium/cilium@<release> in the Go module cache (read only). The BACKPORTs
# are installed from SUITE-backports with the rootfs's own apt (signatures checked as usual).
set -o errexit -o nounset -o pipefail

target=$1 suite=$2 mirror=$3 packages=$4 module=$5 bin=$6 backports=${7:-}
[[ -d "$target" && -z "$(ls -A -- "$target")" ]] || { echo "rootfs.sh: $target is not an empty directory" >&2; exit 1; }
[[ -d "$module/bpf" && -f "$module/images/cilium/init-container.sh" ]] || { echo "rootfs.sh: $module is not the Cilium module" >&2; exit 1; }

debootstrap --variant=minbase --include="$packages" "$suite" "$target" "$mirror"

if [[ -n "$backports" ]]; then
  list="$target/etc/apt/sources.list.d/rootfs-backports.list"
  printf 'deb %s %s-backports main\n' "$mirror" "$suite" >"$list"
  chroot "$target" apt-get update -qq
  IFS=, read -r -a wanted <<<"$backports"
  DEBIAN_FRONTEND=noninteractive chroot "$target" \
    apt-get install -y -qq --no-install-recommends -t "$suite-backports" "${wanted[@]}" >/dev/null
  rm -f -- "$list"
fi

# Cilium 1.20 compiles its datapath with `clang` (no llc step); Debian names it clang-19.
ln -sf clang-19 "$target/usr/bin/clang"

# Cilium's binaries in /usr/bin; the CNI plugin where install-plugin.sh copies it from.
for path in "$bin"/*; do
  name=$(basename -- "$path")
  if [[ "$name" == cilium-cni ]]; then
    install -D -m 0755 -- "$path" "$target/opt/cni/bin/cilium-cni"
  else
    install -m 0755 -- "$path" "$target/usr/bin/$name"
  fi
done

# The chart's init containers run these three from /.
install -m 0755 -- "$module/images/cilium/init-container.sh" "$target/init-container.sh"
install -m 0755 -- "$module/plugins/cilium-cni/install-plugin.sh" "$target/install-plugin.sh"
install -m 0755 -- "$module/plugins/cilium-cni/cni-uninstall.sh" "$target/cni-uninstall.sh"

# The datapath sources the agent compiles at run time, without the module's tests and build files
# (Cilium's `make install-bpf` leaves the same out).
mkdir -p "$target/var/lib/cilium"
cp -R -- "$module/bpf" "$target/var/lib/cilium/bpf"
chmod -R u+w,go-w "$target/var/lib/cilium/bpf"
rm -rf "$target/var/lib/cilium/bpf/tests" "$target/var/lib/cilium/bpf/complexity-tests" \
  "$target/var/lib/cilium/bpf/custom" "$target/var/lib/cilium/bpf/Makefile" \
  "$target/var/lib/cilium/bpf/Makefile.bpf" "$target/var/lib/cilium/bpf/.gitignore"

mkdir -p "$target/home/cilium"
# Nothing of apt's or debootstrap's is needed at run time (the package caches an `apt-get update`
# leaves are 77 MB that every node would import), nor the documentation.
rm -rf "$target"/var/cache/apt/archives/*.deb "$target"/var/cache/apt/*.bin "$target"/var/lib/apt/lists/* \
  "$target"/debootstrap "$target"/usr/share/doc "$target"/usr/share/man "$target"/usr/share/info
