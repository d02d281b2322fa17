#!/bin/sh
# Boots an emulated KVM host (QEMU TCG with EL2) and runs microvm inside it.
# Usage: emulated-host.sh rpi5|gicv3 tests|run [MICROVM ARGS...]
#   rpi5:  virt,gic-version=2, Cortex-A76, Debian's 16 KiB-page 6.12 kernel (a Pi 5 stand-in)
#   gicv3: virt,gic-version=3, Cortex-A76, Debian's 4 KiB-page 6.12 kernel
#   tests: run tests/boot/cases.sh inside and power off; bench-blk, bench-net, bench-boot,
#   bench-peers: tests/bench/blk.sh, net.sh, boot.sh, peers.sh;
#   run: boot machines/rpi5.ini interactively
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
kind=$1
mode=$2
shift 2
case "$kind" in
rpi5) gic=2 flavour=arm64-16k ;;
gicv3) gic=3 flavour=arm64 ;;
*) echo "emulated-host: unknown host kind '$kind'" >&2; exit 2 ;;
esac

pkg=$(apt-cache depends "linux-image-6.12-$flavour:arm64" 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-6\.12\.[^ ]*\)$/\1/p' | head -n 1)
[ -n "$pkg" ] || { echo "emulated-host: cannot resolve linux-image-6.12-$flavour:arm64" >&2; exit 1; }
case "$pkg" in *:arm64) ;; *) pkg="$pkg:arm64" ;; esac
kdir=$("$top/guest-images/fetch-deb.sh" "$pkg")
l1kernel=$(ls "$kdir"/boot/vmlinuz-* | head -n 1)

# The L1 initramfs: busybox, this project's microvm, guest images and tests.
root=$(mktemp -d)
chmod 755 "$root" # its / : an ordinary user must reach /microvm and the images
trap 'rm -rf "$root"' EXIT
trap 'exit 143' TERM # stopped from outside (make check's timeout): still clean up
bb=$("$top/guest-images/fetch-deb.sh" busybox-static:arm64)/bin/busybox
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/dev" "$root/proc" \
	"$root/sys" "$root/tmp" "$root/machines" "$root/build/guest" "$root/tests"
cp "$bb" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$here/l1-init" "$root/init"
cp "$here/cases.sh" "$root/tests/cases.sh"
cp "$top/tests/bench/blk.sh" "$root/tests/bench-blk.sh"
cp "$top/tests/bench/net.sh" "$root/tests/bench-net.sh"
cp "$top/tests/bench/boot.sh" "$root/tests/bench-boot.sh"
cp "$top/tests/bench/peers.sh" "$root/tests/bench-peers.sh"
echo "BOOTBENCH=/tests/bench-boot.sh" >>"$root/tests/env"
cp "$top/build/guest/nettool" "$root/bin/nettool"
cp "$here/net-cases.sh" "$here/blk-cases.sh" "$here/sandbox-cases.sh" "$root/tests/"
# An ordinary user for the sandbox tests (microvm drops to it, or starts as it).
mkdir -p "$root/etc"
printf 'root:x:0:0:root:/:/bin/sh
mvuser:x:1000:1000:microvm test user:/tmp:/bin/sh
' \
	>"$root/etc/passwd"
printf 'root:x:0:
kvm:x:1001:mvuser
mvuser:x:1000:
' >"$root/etc/group"
# TAP devices need tun.ko from the same kernel package, vhost = on the vhost-net modules
# (loaded by l1-init in this order).
mkdir -p "$root/lib"
for m in net/tun net/tap vhost/vhost_iotlb vhost/vhost vhost/vhost_net; do
	xz -dc "$kdir"/lib/modules/*/kernel/drivers/$m.ko.xz >"$root/lib/${m#*/}.ko"
done
# MICROVM_BIN: another static arm64 build to test (e.g. an older commit's, for comparison).
cp "${MICROVM_BIN:-$top/build/aarch64/microvm}" "$root/microvm"
cp "$top"/machines/*.ini "$root/machines/"
cp "$top/build/guest/Image" "$top/build/guest/initramfs.cpio.gz" "$top/build/guest/rootfs.ext4" \
	"$root/build/guest/"
gzip -1 -c "$top/build/guest/Image" >"$root/build/guest/Image.gz"
if { [ "$kind" = gicv3 ] && [ "$mode" = tests ]; } || [ "$mode" = bench-boot ] ||
	[ "$mode" = bench-peers ]; then
	# The L1 kernel is also Debian's distro kernel: boot it as a guest too.
	cp "$l1kernel" "$root/build/guest/distro-Image"
	echo "DISTRO_KERNEL=/build/guest/distro-Image" >>"$root/tests/env"
fi
echo "HOSTKIND=$kind" >>"$root/tests/env"
# MVONLY=net runs one group of boot tests (see tests/boot/cases.sh).
echo "MVONLY=${MVONLY:-}" >>"$root/tests/env"
echo "BENCH_RUNS=${BENCH_RUNS:-3}" >>"$root/tests/env"
# Benchmark settings, when given (the scripts in tests/bench/ have the defaults).
for v in BOOT_ITER BOOT_TRANSPORTS BOOT_VCPUS BOOT_MEM_MIB BOOT_KERNELS BOOT_SECCOMP \
	BENCH_SECCOMP BLK_COMBOS FIO_SECONDS IPERF_SECONDS FIO_STRESS_SECONDS FIO_STRESS_SEPARATE \
	PEER_CASES PEER_WORK; do
	eval "val=\${$v:-}"
	[ -z "$val" ] || echo "$v='$val'" >>"$root/tests/env"
done
# The boot tests' fio stress cases mount the tools disk in the guest.
[ "$mode" = tests ] && cp "$top/build/guest/tools.ext4" "$root/build/guest/"
case "$mode" in
bench-peers)
	# The peers (PEERS_DIR: lkvm, kvm-host, microvm-base, those built) and a guest whose
	# init powers off at once.
	mkdir -p "$root/peers"
	[ -z "${PEERS_DIR:-}" ] || cp -a "$PEERS_DIR"/. "$root/peers/"
	cp "$top/build/guest/initramfs-poweroff.cpio.gz" "$root/build/guest/"
	;;
esac
case "$mode" in
bench-blk | bench-net | bench-peers)
	# fio and iperf3 for this host (a tree) and for the guest (a disk it mounts)
	mkdir -p "$root/opt/tools"
	tar -xzf "$top/build/guest/tools.tar.gz" -C "$root/opt/tools"
	cp "$top/build/guest/tools.ext4" "$root/build/guest/"
	echo "TOOLS=/opt/tools" >>"$root/tests/env"
	;;
esac
if [ "$(id -u)" = 0 ]; then
	mknod -m 600 "$root/dev/console" c 5 1
fi
cpio="$root.cpio.gz"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$cpio"
trap 'rm -rf "$root" "$cpio"' EXIT

mvargs=$(echo "$*" | tr ' ' ',')
# panic=-1: a panicking emulated host reboots, which -no-reboot turns into QEMU's exit.
l1args="console=ttyAMA0 quiet panic=-1"
set -- qemu-system-aarch64 -M "virt,virtualization=on,gic-version=$gic" -cpu cortex-a76 \
	-smp 2 -m 3G -nic none -display none -no-reboot -kernel "$l1kernel" -initrd "$cpio" \
	-append "$l1args mvl1=$mode${mvargs:+ mvargs=$mvargs}"
if [ "$mode" = run ]; then
	# The console follows the host kind: machines/virt-gicv3.ini on the GICv3 host.
	[ "$kind" = gicv3 ] && set -- "$@" -append "$l1args mvl1=run mvmachine=virt-gicv3${mvargs:+ mvargs=$mvargs}"
	exec "$@" -chardev stdio,id=con,signal=off -serial chardev:con
fi
"$@" -serial stdio </dev/null
