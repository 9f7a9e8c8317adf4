# Make the kind node's root filesystem in an empty directory: Debian by debootstrap (minbase plus the
# recipe's packages), then systemd trimmed for life in a container. Run as root by supply/node_image.py:
#   bash rootfs.sh TARGET SUITE MIRROR PACKAGE[,PACKAGE...]
# The node's own files and binaries are added afterwards by supply/node_image.py.
set -o errexit -o nounset -o pipefail

target=$1 suite=$2 mirror=$3 packages=$4
[[ -d "$target" && -z "$(ls -A -- "$target")" ]] || { echo "rootfs.sh: $target is not an empty directory" >&2; exit 1; }

debootstrap --variant=minbase --include="$packages" "$suite" "$target" "$mirror"

# systemd in a container: no units the image's packages enabled (the node enables its own), none
# of the hardware or login units a container has no use for, no kernel log in the journal, and
# systemd itself as /sbin/init (kind runs `entrypoint /sbin/init`).
rm -f "$target"/etc/systemd/system/*.wants/* \
  "$target"/lib/systemd/system/multi-user.target.wants/* \
  "$target"/lib/systemd/system/local-fs.target.wants/* \
  "$target"/lib/systemd/system/sockets.target.wants/*udev* \
  "$target"/lib/systemd/system/sockets.target.wants/*initctl* \
  "$target"/lib/systemd/system/basic.target.wants/* \
  "$target"/lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service
echo "ReadKMsg=no" >>"$target/etc/systemd/journald.conf"
ln -sf /lib/systemd/systemd "$target/sbin/init"
# binfmt_misc registrations are kernel-global: a node must not make them.
ln -sf /dev/null "$target/etc/systemd/system/systemd-binfmt.service"

# Debian ships the CNI plugins in /usr/lib/cni; the kubelet, containerd and Cilium use /opt/cni/bin,
# a real directory (Cilium installs its own plugin there).
mkdir -p "$target/opt/cni/bin"
cp -a "$target"/usr/lib/cni/. "$target/opt/cni/bin/"

mkdir -p "$target/etc/kubernetes/manifests"
# Nothing of apt's or debootstrap's is needed at run time.
rm -rf "$target"/var/cache/apt/archives/*.deb "$target"/var/lib/apt/lists/* "$target"/debootstrap
