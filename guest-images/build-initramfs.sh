#!/bin/sh
# Builds the busybox (busybox-static of GUEST_ARCH: arm64, or x86_64) initramfs whose init
# is conf/guest-init.
# Usage: build-initramfs.sh OUT.cpio.gz [EXTRA_DIR]   (EXTRA_DIR is copied over the root)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
out=$1
extra=${2:-}
case "${GUEST_ARCH:-arm64}" in
x86_64) debarch=amd64 ;;
*) debarch=arm64 ;;
esac
bb=$("$here/fetch-deb.sh" "busybox-static:$debarch")/bin/busybox
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/proc" "$root/sys" \
	"$root/dev" "$root/tmp" "$root/etc" "$root/root"
cp "$bb" "$root/bin/busybox"
ln -s busybox "$root/bin/sh" # init installs the other applet links at boot
cp "$top/conf/guest-init" "$root/init"
chmod 755 "$root/init"
cp "$top/conf/boot-timer-init" "$root/bin/boot-timer-init"
chmod 755 "$root/bin/boot-timer-init"
mkdir -p "$root/etc/udhcpc"
cp "$top/conf/udhcpc.script" "$root/etc/udhcpc/default.script"
chmod 755 "$root/etc/udhcpc/default.script"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
printf 'export PS1="microvm:\\w# "\n' >"$root/etc/profile"
if [ "$(id -u)" = 0 ]; then
	mknod -m 600 "$root/dev/console" c 5 1
	mknod -m 666 "$root/dev/null" c 1 3
fi
[ -z "$extra" ] || cp -a "$extra"/. "$root"/
mkdir -p "$(dirname "$out")"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9n >"$out.tmp"
mv "$out.tmp" "$out"
