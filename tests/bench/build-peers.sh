#!/bin/sh
# Builds the peer monitors that make bench-peers measures microvm against, as static arm64
# binaries: kvmtool (lkvm) from KVMTOOL_SRC and kvm-host from KVM_HOST_SRC, and for make
# kvm-unit-tests the KVM test suite's arm64 tests from KUT_SRC (a directory of .flat files and
# unittests.cfg); each source a tree or a .tar.gz of one. One whose variable is unset or names
# nothing is skipped with a message. Builds are cached under $MICROVM_CACHE/peers, keyed on
# the source's contents and this script; libfdt comes from the project's arm64 sysroot.
# Usage: build-peers.sh OUTDIR [NAME...]   (writes OUTDIR/lkvm, OUTDIR/kvm-host and
#        OUTDIR/kvm-unit-tests, those it can; NAMEs: only those)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cache=${MICROVM_CACHE:-$HOME/.cache/microvm}
sysroot=$cache/sysroot-arm64
out=$1
mkdir -p "$out" "$cache/peers"
shift
names=${*:-lkvm kvm-host}
rm -rf "$out/lkvm" "$out/kvm-host" "$out/kvm-unit-tests"

# key SRC: a hash of the source's contents (tarball bytes, or every file of the tree)
key() {
	if [ -f "$1" ]; then
		sha256sum <"$1"
	else
		(cd "$1" && find . -path ./.git -prune -o -type f -print | LC_ALL=C sort |
			xargs sha256sum)
	fi | cat - "$0" | sha256sum | cut -c1-16
}

# unpack SRC DIR: the source tree in DIR (a tarball's single top directory, or a copy)
unpack() {
	mkdir -p "$2"
	if [ -f "$1" ]; then
		tar -xzf "$1" -C "$2" --strip-components=1
	else
		cp -a "$1"/. "$2"/
	fi
}

# libfdt for the peers' makefiles: the archive and its three headers in one directory
fdt=$(mktemp -d)
trap 'rm -rf "$fdt"' EXIT
for f in lib/aarch64-linux-gnu/libfdt.a include/libfdt.h include/libfdt_env.h include/fdt.h; do
	if [ ! -f "$sysroot/usr/$f" ]; then
		echo "build-peers: $sysroot/usr/$f missing (run make deps)" >&2
		exit 1
	fi
	cp "$sysroot/usr/$f" "$fdt/"
done

# build NAME SRC: build peer NAME from SRC into the cache; copy it to OUTDIR/NAME
build() {
	name=$1 src=$2
	if [ -z "$src" ] || [ ! -e "$src" ]; then
		echo "build-peers: $name skipped: no source (set ${3}=DIR or a .tar.gz)" >&2
		return 0
	fi
	dir=$cache/peers/$name-$(key "$src")
	if [ ! -x "$dir/$name" ]; then
		echo "build-peers: building $name from $src" >&2
		rm -rf "$dir.tmp"
		unpack "$src" "$dir.tmp/src"
		case $name in
		lkvm)
			# Its optional libraries (bfd, zlib, aio) are left out: synchronous disk I/O.
			make -s -C "$dir.tmp/src" -j"$(nproc)" ARCH=arm64 \
				CROSS_COMPILE=aarch64-linux-gnu- LIBFDT_DIR="$fdt" WERROR=0 \
				lkvm-static >"$dir.tmp/build.log" 2>&1 ||
				{ tail -n 20 "$dir.tmp/build.log" >&2; exit 1; }
			bin=$dir.tmp/src/lkvm-static
			;;
		kvm-host)
			# Its bundled dtc is a submodule a snapshot lacks: Debian's libfdt instead.
			# (Its makefile takes PWD from the environment: run it from its tree.)
			(cd "$dir.tmp/src" && make -s -j"$(nproc)" PWD="$PWD" ARCH=aarch64 \
				CC=aarch64-linux-gnu-gcc FDT_OBJS= FDT_CFLAGS=-I"$fdt" \
				LDFLAGS="-static -pthread -L$fdt -lfdt") >"$dir.tmp/build.log" 2>&1 ||
				{ tail -n 20 "$dir.tmp/build.log" >&2; exit 1; }
			bin=$dir.tmp/src/build/kvm-host
			;;
		kvm-unit-tests)
			# Built for kvmtool's machine (its UART address for early output); microvm
			# loads the same headerless .flat files ([boot] kernel_format = raw).
			(cd "$dir.tmp/src" && ./configure --arch=arm64 \
				--cross-prefix=aarch64-linux-gnu- --target=kvmtool &&
				make -s -j"$(nproc)") >"$dir.tmp/build.log" 2>&1 ||
				{ tail -n 20 "$dir.tmp/build.log" >&2; exit 1; }
			bin=$dir.tmp/tests
			mkdir -p "$bin"
			cp "$dir.tmp/src"/arm/*.flat "$dir.tmp/src/arm/unittests.cfg" "$bin/"
			;;
		esac
		mkdir -p "$dir"
		if [ -d "$bin" ]; then
			mv "$bin" "$dir/$name"
		else
			aarch64-linux-gnu-strip -o "$dir/$name" "$bin"
		fi
		(cd "$dir.tmp/src" && git rev-parse --short HEAD 2>/dev/null || basename "$src") \
			>"$dir/version"
		rm -rf "$dir.tmp"
	fi
	cp -a "$dir/$name" "$out/$name"
	cp "$dir/version" "$out/$name.version"
	echo "build-peers: $name ready ($(cat "$dir/version"))" >&2
}

for n in $names; do
	case $n in
	lkvm) build lkvm "${KVMTOOL_SRC:-}" KVMTOOL_SRC ;;
	kvm-host) build kvm-host "${KVM_HOST_SRC:-}" KVM_HOST_SRC ;;
	kvm-unit-tests) build kvm-unit-tests "${KUT_SRC:-}" KUT_SRC ;;
	esac
done
