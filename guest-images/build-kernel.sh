#!/bin/sh
# Builds (or reuses) the minimal guest kernel: an arm64 Image or an x86_64 bzImage.
# Usage: build-kernel.sh OUT_IMAGE [KERNEL_SRC_DIR]   (GUEST_ARCH=arm64 or x86_64, default arm64)
# The cache key covers the source version, the config fragment and this script,
# so a changed input rebuilds and an unchanged one is reused across clones.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
out=$1
src=${2:-${KERNEL_SRC:-}}
cache=${MICROVM_CACHE:-$HOME/.cache/microvm}
tarball=/usr/src/linux-source-6.12.tar.xz
case "${GUEST_ARCH:-arm64}" in
arm64)
	frag="$top/conf/guest-kernel.config"
	karch=arm64 target=Image image=arch/arm64/boot/Image
	cross=${CROSS_COMPILE_GUEST:-aarch64-linux-gnu-}
	;;
x86_64)
	frag="$top/conf/guest-kernel-x86_64.config"
	karch=x86_64 target=bzImage image=arch/x86/boot/bzImage
	# Built natively on an x86-64 host, cross-built elsewhere.
	[ "$(uname -m)" = x86_64 ] && cross="" || cross=${CROSS_COMPILE_GUEST:-x86_64-linux-gnu-}
	;;
*) echo "build-kernel: GUEST_ARCH must be arm64 or x86_64" >&2; exit 2 ;;
esac

if [ -n "$src" ]; then
	srcid="tree:$(cd "$src" && pwd):$(make -s -C "$src" kernelversion)"
else
	[ -f "$tarball" ] || { echo "build-kernel: $tarball missing (apt-get install linux-source-6.12)" >&2; exit 1; }
	srcid="deb:$(dpkg-query -W -f='${Version}' linux-source-6.12)"
fi
key=$( { echo "$srcid $karch"; cat "$frag" "$0"; } | sha256sum | cut -c1-16)
dir="$cache/kernel-$key"
if [ ! -f "$dir/$target" ]; then
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp"
	if [ -z "$src" ]; then
		echo "build-kernel: unpacking $tarball" >&2
		tar -C "$dir.tmp" -xf "$tarball"
		src="$dir.tmp/linux-source-6.12"
	fi
	obj="$dir.tmp/obj"
	mkdir -p "$obj"
	echo "build-kernel: building guest kernel (key $key)" >&2
	make -s -C "$src" O="$obj" ARCH=$karch CROSS_COMPILE="$cross" tinyconfig >/dev/null
	"$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$frag" >/dev/null
	make -s -C "$src" O="$obj" ARCH=$karch CROSS_COMPILE="$cross" olddefconfig >/dev/null
	# Every line of the fragment must have survived olddefconfig.
	grep '^CONFIG_' "$frag" | while read -r line; do
		grep -qx "$line" "$obj/.config" || echo "build-kernel: warning: $line not set" >&2
	done
	make -s -C "$src" O="$obj" ARCH=$karch CROSS_COMPILE="$cross" -j"$(nproc)" $target
	mkdir -p "$dir"
	cp "$obj/$image" "$obj/.config" "$dir/"
	rm -rf "$dir.tmp"
fi
mkdir -p "$(dirname "$out")"
cp "$dir/$target" "$out"
