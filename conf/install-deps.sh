#!/bin/sh
# Installs the Debian 12 packages microvm needs to build, test and run (as root).
# Idempotent: only missing packages are installed. The arm64 -dev packages used
# by the static cross build are unpacked into a sysroot under the cache dir,
# because libfdt-dev cannot be co-installed for two architectures.
set -eu

cache=${MICROVM_CACHE:-$HOME/.cache/microvm}
native="build-essential pkg-config clang lld libclang-rt-14-dev
	libfdt-dev libinih-dev liburing-dev zlib1g-dev libseccomp-dev device-tree-compiler
	libhttp-parser-dev libjansson-dev libprotobuf-c-dev protobuf-c-compiler curl
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm
	linux-source-6.12 bc bison flex cpio xz-utils kmod e2fsprogs
	libssl-dev libelf-dev clang-format gzip gnuplot-nox
	qemu-system-x86 acpica-tools
	lintian man-db groff-base socat"
cross="libfdt-dev libfdt1 libinih-dev libinih1 liburing-dev liburing2
	zlib1g-dev zlib1g libseccomp-dev libseccomp2 libhttp-parser-dev libhttp-parser2.9
	libjansson-dev libjansson4 libprotobuf-c-dev libprotobuf-c1"

missing=""
for p in $native; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
need_arm64=0
[ "$(dpkg --print-architecture)" = arm64 ] || dpkg --print-foreign-architectures | grep -qx arm64 ||
	need_arm64=1

sysroot="$cache/sysroot-arm64"
# The sysroot is keyed on its package list: a package added to it rebuilds it.
want=$(echo $cross)
have=$(cat "$sysroot/.done" 2>/dev/null || true)
if [ -n "$missing" ] || [ $need_arm64 = 1 ] || [ "$have" != "$want" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: missing packages:$missing; run as root" >&2
		exit 1
	fi
	if [ $need_arm64 = 1 ]; then
		dpkg --add-architecture arm64
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	if [ -n "$missing" ]; then
		apt-get install -y -q --no-install-recommends $missing
	fi
fi

if [ "$have" != "$want" ]; then
	rm -rf "$sysroot"
	tmp=$(mktemp -d)
	chown _apt "$tmp" 2>/dev/null || true
	mkdir -p "$sysroot"
	pkgs=""
	for p in $cross; do pkgs="$pkgs $p:arm64"; done
	(cd "$tmp" && apt-get download $pkgs)
	for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$sysroot"; done
	rm -rf "$tmp"
	echo "$want" >"$sysroot/.done"
fi
