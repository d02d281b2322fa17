#!/bin/sh
# Builds an ext4 root file system image holding the same busybox tree as the initramfs
# (so that root=/dev/vda boots to the same init), with mke2fs -d.
# Usage: build-rootfs.sh INITRAMFS.cpio.gz OUT.ext4 [SIZE] [FILE...]  (FILEs go to /bin)
set -eu
cpio_gz=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
out=$2
size=${3:-32M}
if [ $# -ge 3 ]; then shift 3; else shift $#; fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
(cd "$root" && gzip -dc "$cpio_gz" | cpio -id --quiet 2>/dev/null)
for f in "$@"; do cp "$f" "$root/bin/"; done
rm -f "$out.tmp"
mke2fs -q -t ext4 -L microvm-root -d "$root" -F "$out.tmp" "$size" >/dev/null
mv "$out.tmp" "$out"
