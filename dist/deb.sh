#!/bin/sh
# make deb: Debian packages of microvm in build/deb/: microvm_VERSION_arm64.deb always (for a
# Raspberry Pi 5 or another arm64 host), and microvm_VERSION_amd64.deb on an x86-64 host.
# Each holds what make install PREFIX=/usr puts in place, the minimal guest kernel and
# initramfs for its architecture (so the machines boot as installed), a changelog and a
# copyright file. Built natively the binary is dynamic and its Depends come from
# dpkg-shlibdeps; the arm64 package built on another host carries the static cross build
# (no shared libraries of another architecture are needed), and says so to lintian.
# lintian, where it is installed, checks each package; an error fails the build.
# The maintainer is DEB_MAINTAINER ("Name <address>"), else the last commit's author; file
# times and the changelog's date are the last commit's (SOURCE_DATE_EPOCH), so a clean tree
# gives the same package again.
# Usage: dist/deb.sh [arm64|amd64]...
set -eu
umask 022
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
version=$(cat VERSION)
host=$(dpkg --print-architecture)
jobs=$(nproc 2>/dev/null || echo 2)
arches=${*:-arm64}
[ $# -gt 0 ] || [ "$host" != amd64 ] || arches="arm64 amd64"
maintainer=${DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null || true)}
if [ -z "$maintainer" ]; then
	echo "deb: no git history to take the maintainer from: set DEB_MAINTAINER='Name <address>'" >&2
	exit 2
fi
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
when=$(date -R -u -d "@$SOURCE_DATE_EPOCH")
rev=$(git describe --always --dirty 2>/dev/null || echo "an unversioned tree")
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
	# Staged as debhelper would, in debian/microvm of a directory with a debian/control
	# (which dpkg-shlibdeps wants).
	work=build/deb/$arch
	stage=$work/debian/microvm
	rm -rf "$work"
	mkdir -p "$work/debian"
	printf 'Source: microvm\n\nPackage: microvm\nArchitecture: any\n' >"$work/debian/control"
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

		Files: *
		Copyright: 2026 the microvm developers
		License: other
		 No licence has been chosen for microvm yet: the developers keep all rights.

		Files: usr/lib/microvm/$guest/*
		Copyright: Linus Torvalds and the Linux kernel developers; Erik Andersen, Rob
		 Landley, Denys Vlasenko and the BusyBox developers
		License: GPL-2
		 The guest kernel is built from Debian's linux-source-6.12 and the initramfs
		 holds Debian's busybox-static; their sources are those Debian packages. On
		 Debian systems the GNU General Public License version 2 is in
		 /usr/share/common-licenses/GPL-2.
	COPY
	chmod 644 "$doc/copyright"
	mkdir -p "$stage/DEBIAN" # (dpkg-shlibdeps finds the package's root by it)
	if [ -n "$static" ]; then
		mkdir -p "$stage/usr/share/lintian/overrides"
		cat >"$stage/usr/share/lintian/overrides/microvm" <<-OVERRIDES
			# Cross-built on a host without arm64 shared libraries: a static-pie binary
			# with its libraries (libfdt, inih, liburing, zlib, libseccomp, jansson, http-parser,
			# protobuf-c) linked in.
			microvm: embedded-library zlib [usr/bin/microvm]
			microvm: shared-library-lacks-prerequisites [usr/bin/microvm]
		OVERRIDES
		depends=""
	else
		(cd "$work" && dpkg-shlibdeps -O -e debian/microvm/usr/bin/microvm) >"$work/shlibs" ||
			{ echo "deb: dpkg-shlibdeps failed" >&2; exit 1; }
		depends=$(sed -n 's/^shlibs:Depends=//p' "$work/shlibs")
		[ -n "$depends" ] || { echo "deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
	fi
	(cd "$stage" && find usr -type f | LC_ALL=C sort | xargs md5sum) >"$stage/DEBIAN/md5sums"
	{
		echo "Package: microvm"
		echo "Version: $version"
		echo "Architecture: $arch"
		echo "Maintainer: $maintainer"
		# As dpkg-gencontrol counts it: KiB per file, rounded up, and one per directory.
		echo "Installed-Size: $(find "$stage" -path "$stage/DEBIAN" -prune -o -type f -printf '%s\n' \
			-o -type d -printf '1024\n' | awk '{ k += int(($1 + 1023) / 1024) } END { print k }')"
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
