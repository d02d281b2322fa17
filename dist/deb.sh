#!/bin/sh
# make deb: Debian packages of microvm in build/deb/: microvm_VERSION_arm64.deb always (for a
# Raspberry Pi 5 or another arm64 host), and microvm_VERSION_amd64.deb on an x86-64 host.
# Each holds what make install PREFIX=/usr puts in place, the minimal guest kernel and
# initramfs for its architecture (so the machines boot as installed), a changelog and a
# copyright file. Built natively the binary is dynamic and its Depends come from
# dpkg-shlibdeps; the arm64 package built on another host carries the static cross build
# (no shared libraries of another architecture are needed), and says so to lintian.
# lintian, where it is installed, checks each package; an error fails the build.
# Usage: dist/deb.sh [arm64|amd64]...
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
version=$(cat VERSION)
host=$(dpkg --print-architecture)
jobs=$(nproc 2>/dev/null || echo 2)
arches=${*:-arm64}
[ $# -gt 0 ] || [ "$host" != amd64 ] || arches="arm64 amd64"
maintainer=$(git log -1 --format='%an <%ae>' 2>/dev/null || echo "microvm developers <root@localhost>")
when=$(git log -1 --format=%cD 2>/dev/null || date -R)
rev=$(git describe --always --dirty 2>/dev/null || echo unknown)
mkdir -p build/deb

for arch in $arches; do
	case "$arch" in
	arm64) guest=guest kernel=Image ;;
	amd64) guest=guest-x86_64 kernel=bzImage ;;
	*) echo "deb: unknown architecture '$arch' (arm64 or amd64)" >&2; exit 2 ;;
	esac
	static=""
	if [ "$arch" = "$host" ]; then
		mk="make -s -j$jobs"
	elif [ "$arch" = arm64 ]; then
		mk="make -s -j$jobs CROSS_COMPILE=aarch64-linux-gnu-"
		static=1
	else
		echo "deb: an $arch package is built on an $arch or an amd64 host" >&2
		exit 2
	fi
	make -s "build/$guest/$kernel" "build/$guest/initramfs.cpio.gz"
	stage=build/deb/microvm_${version}_$arch
	rm -rf "$stage"
	$mk install DESTDIR="$top/$stage" PREFIX=/usr GUESTS="build/$guest" >/dev/null
	# As Debian's dh_strip does: no debugging symbols, comments or notes in the package.
	${static:+aarch64-linux-gnu-}strip --strip-unneeded --remove-section=.comment \
		--remove-section=.note "$stage/usr/bin/microvm"
	doc=$stage/usr/share/doc/microvm
	gzip -9n "$stage/usr/share/man/man1/microvm.1" "$stage/usr/share/man/man5/microvm.ini.5"
	{
		echo "microvm ($version) unstable; urgency=medium"
		echo
		echo "  * Built from the microvm tree at $rev."
		echo
		echo " -- $maintainer  $when"
	} | gzip -9n >"$doc/changelog.gz"
	cat >"$doc/copyright" <<-COPY
		Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
		Upstream-Name: microvm
		Comment: The guest kernel in /usr/share/microvm/$guest/ is built from Debian's
		 linux-source-6.12 (GPL-2), and its initramfs holds Debian's busybox-static
		 (GPL-2); their sources are those Debian packages.

		Files: *
		Copyright: 2026 the microvm developers
		License: other
		 No licence has been chosen for microvm yet: the developers keep all rights.
	COPY
	chmod 644 "$doc/copyright"
	if [ -n "$static" ]; then
		mkdir -p "$stage/usr/share/lintian/overrides"
		cat >"$stage/usr/share/lintian/overrides/microvm" <<-OVERRIDES
			# Cross-built on a host without arm64 shared libraries: a static-pie binary
			# with its libraries (libfdt, inih, liburing, zlib, libseccomp) linked in.
			microvm: statically-linked-binary [usr/bin/microvm]
			microvm: embedded-library zlib [usr/bin/microvm]
			microvm: shared-library-lacks-prerequisites [usr/bin/microvm]
		OVERRIDES
		depends=""
	else
		tmp=$(mktemp -d)
		mkdir "$tmp/debian"
		printf 'Source: microvm\n\nPackage: microvm\nArchitecture: any\n' >"$tmp/debian/control"
		depends=$(cd "$tmp" && dpkg-shlibdeps -O -e "$top/$stage/usr/bin/microvm" 2>/dev/null |
			sed -n 's/^shlibs:Depends=//p')
		rm -rf "$tmp"
	fi
	mkdir -p "$stage/DEBIAN"
	{
		echo "Package: microvm"
		echo "Version: $version"
		echo "Architecture: $arch"
		echo "Maintainer: $maintainer"
		echo "Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
		[ -z "$depends" ] || echo "Depends: $depends"
		echo "Section: admin"
		echo "Priority: optional"
		echo "Description: small KVM virtual machine monitor for arm64 and x86-64"
		echo " microvm boots Linux guests on KVM from one INI machine description: memory"
		echo " map, interrupt controller (GICv2 or GICv3 on arm64), UART and virtio disks"
		echo " and NICs, each on virtio-mmio or on an ECAM PCI host bridge. The guest"
		echo " learns the machine from a device tree (arm64) or ACPI tables (x86-64)."
		echo " Disks are served with io_uring, NICs are backed by TAP devices (optionally"
		echo " vhost-net), and the monitor confines itself with seccomp by default."
	} >"$stage/DEBIAN/control"
	deb=build/deb/microvm_${version}_$arch.deb
	dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
	echo "deb: $deb ($(wc -c <"$deb") bytes)"
	if command -v lintian >/dev/null; then
		status=0
		lintian --fail-on error "$deb" >"build/deb/lintian-$arch.txt" 2>&1 || status=$?
		grep -v '^running with root privileges' "build/deb/lintian-$arch.txt" || true
		echo "deb: lintian: $(grep -c '^E:' "build/deb/lintian-$arch.txt") errors," \
			"$(grep -c '^W:' "build/deb/lintian-$arch.txt") warnings," \
			"$(grep -c '^I:' "build/deb/lintian-$arch.txt") notes (status $status)"
		[ "$status" = 0 ] || exit 1
	else
		echo "deb: lintian is not installed: not checked"
	fi
done
