# Make the tools image's root filesystem in an empty directory: a minimal Debian with the
# packages the checks call. Run as root by supply/tools_image.py:
#   bash rootfs.sh TARGET SUITE MIRROR PACKAGE[,PACKAGE...]
set -o errexit -o nounset -o pipefail

target=$1 suite=$2 mirror=$3 packages=$4
[[ -d "$target" && -z "$(ls -A -- "$target")" ]] || { echo "rootfs.sh: $target is not an empty directory" >&2; exit 1; }

debootstrap --variant=minbase --include="$packages" "$suite" "$target" "$mirror"

# Nothing of apt's or debootstrap's is needed at run time; no documentation either.
rm -rf "$target"/var/cache/apt/archives/*.deb "$target"/var/lib/apt/lists/* "$target"/debootstrap \
  "$target"/usr/share/doc "$target"/usr/share/man "$target"/usr/share/info "$target"/usr/share/locale
