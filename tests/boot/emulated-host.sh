#!/bin/sh
# Boots an emulated KVM host (QEMU TCG with EL2, or with nested SVM) and runs microvm inside.
# Usage: emulated-host.sh rpi5|gicv3|x86 tests|run [MICROVM ARGS...]
#   rpi5:  virt,gic-version=2, Cortex-A76, Debian's 16 KiB-page 6.12 kernel (a Pi 5 stand-in)
#   gicv3: virt,gic-version=3, Cortex-A76, Debian's 4 KiB-page 6.12 kernel
#   x86:   q35, EPYC with SVM and nested paging, Debian's amd64 6.12 kernel (kvm-amd)
#   tests: run tests/boot/cases.sh inside and power off; bench-blk, bench-net, bench-boot,
#   bench-peers: tests/bench/blk.sh, net.sh, boot.sh, peers.sh; kut: tests/kut/kut.sh
#   (kvm-unit-tests from KUT_DIR, beside kvmtool from PEERS_DIR when it holds one);
#   run: boot machines/rpi5.ini interactively; kallsyms: print the host kernel's code symbols
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
kind=$1
mode=$2
shift 2
guest=guest debarch=arm64
case "$kind" in
rpi5) gic=2 flavour=arm64-16k ;;
gicv3) gic=3 flavour=arm64 ;;
x86) flavour=amd64 debarch=amd64 guest=guest-x86_64 ;;
*) echo "emulated-host: unknown host kind '$kind'" >&2; exit 2 ;;
esac

pkg=$(apt-cache depends "linux-image-6.12-$flavour:$debarch" 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-6\.12\.[^ ]*\)$/\1/p' | head -n 1)
[ -n "$pkg" ] || { echo "emulated-host: cannot resolve linux-image-6.12-$flavour:$debarch" >&2; exit 1; }
case "$pkg" in *:"$debarch") ;; *) pkg="$pkg:$debarch" ;; esac
kdir=$("$top/guest-images/fetch-deb.sh" "$pkg")
l1kernel=$(ls "$kdir"/boot/vmlinuz-* | head -n 1)

# The L1 initramfs: busybox, this project's microvm, guest images and tests.
root=$(mktemp -d)
chmod 755 "$root" # its / : an ordinary user must reach /microvm and the images
trap 'rm -rf "$root"' EXIT
trap 'exit 143' TERM # stopped from outside (make check's timeout): still clean up
bb=$("$top/guest-images/fetch-deb.sh" "busybox-static:$debarch")/bin/busybox
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/dev" "$root/proc" \
	"$root/sys" "$root/tmp" "$root/machines" "$root/build/guest" "$root/tests"
cp "$bb" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$here/l1-init" "$root/init"
cp "$here/cases.sh" "$root/tests/cases.sh"
cp "$top/tests/bench/blk.sh" "$root/tests/bench-blk.sh"
cp "$top/tests/bench/net.sh" "$root/tests/bench-net.sh"
cp "$top/tests/bench/boot.sh" "$root/tests/bench-boot.sh"
cp "$top/tests/bench/restore.sh" "$root/tests/bench-restore.sh"
cp "$top/tests/bench/devices.sh" "$root/tests/bench-devices.sh"
cp "$top/tests/bench/peers.sh" "$root/tests/bench-peers.sh"
cp "$top/tests/bench/x86-qemu.sh" "$root/tests/bench-x86.sh"
cp "$top/tests/kut/kut.sh" "$root/tests/kut.sh"
echo "BOOTBENCH=/tests/bench-boot.sh" >>"$root/tests/env"
cp "$top/build/$guest/nettool" "$root/bin/nettool"
cp "$here/net-cases.sh" "$here/blk-cases.sh" "$here/sandbox-cases.sh" "$here/api-cases.sh" \
	"$here/snap-cases.sh" "$here/rng-cases.sh" "$here/vsock-cases.sh" \
	"$here/balloon-cases.sh" \
	"$here/run-devices.sh" \
	"$root/tests/"
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
# TAP devices need tun.ko from the same kernel package, vhost = on the vhost-net modules,
# kvmtool's --vsock (bench-peers) vhost_vsock and the host's AF_VSOCK (loaded by l1-init in
# this order).
# On x86 KVM itself is modules too (kvm-amd needs ccp), loaded in this order.
mkdir -p "$root/lib"
mods="drivers/net/tun drivers/net/tap drivers/vhost/vhost_iotlb drivers/vhost/vhost drivers/vhost/vhost_net
	net/vmw_vsock/vsock net/vmw_vsock/vmw_vsock_virtio_transport_common drivers/vhost/vhost_vsock"
[ "$kind" = x86 ] && mods="virt/lib/irqbypass arch/x86/kvm/kvm drivers/crypto/ccp/ccp
	arch/x86/kvm/kvm-amd $mods"
# L1_DISK=FILE: FILE is the host's disk /dev/vda (virtio-blk on PCI), for benchmarks of an
# image on a block device (bench-peers PEER_IMAGE=bdev).
[ -z "${L1_DISK:-}" ] || mods="drivers/block/virtio_blk $mods"
for m in $mods; do
	xz -dc "$kdir"/lib/modules/*/kernel/$m.ko.xz >"$root/lib/${m##*/}.ko"
	echo "${m##*/}" >>"$root/lib/modules.list"
done
# MICROVM_BIN: another static build to test (e.g. an older commit's, for comparison).
if [ "$kind" = x86 ]; then
	cp "${MICROVM_BIN:-$top/build/x86_64/microvm}" "$root/microvm"
	mkdir -p "$root/build/guest-x86_64"
	cp "$top/build/guest-x86_64/bzImage" "$top/build/guest-x86_64/initramfs.cpio.gz" \
		"$top/build/guest-x86_64/rootfs.ext4" "$root/build/guest-x86_64/"
else
	cp "${MICROVM_BIN:-$top/build/aarch64/microvm}" "$root/microvm"
	cp "$top/build/guest/Image" "$top/build/guest/initramfs.cpio.gz" \
		"$top/build/guest/rootfs.ext4" "$root/build/guest/"
	gzip -1 -c "$top/build/guest/Image" >"$root/build/guest/Image.gz"
fi
cp "$top"/machines/*.ini "$root/machines/"
if { [ "$kind" != rpi5 ] && [ "$mode" = tests ]; } || [ "$mode" = bench-boot ] ||
	[ "$mode" = bench-peers ] || [ "$mode" = bench-x86 ]; then
	# The L1 kernel is also Debian's distro kernel: boot it as a guest too.
	cp "$l1kernel" "$root/build/$guest/distro-kernel"
	echo "DISTRO_KERNEL=/build/$guest/distro-kernel" >>"$root/tests/env"
fi
echo "HOSTKIND=$kind" >>"$root/tests/env"
# MVONLY=net runs one group of boot tests, MVFROM=UNIT the units from UNIT on (a host that
# stalled, started again; see tests/boot/cases.sh).
echo "MVONLY=${MVONLY:-}" >>"$root/tests/env"
echo "MVFROM=${MVFROM:-}" >>"$root/tests/env"
echo "BENCH_RUNS=${BENCH_RUNS:-3}" >>"$root/tests/env"
[ -z "${L1_DISK:-}" ] || echo "L1_DISK=/dev/vda" >>"$root/tests/env"
# Benchmark settings, when given (the scripts in tests/bench/ have the defaults).
for v in BOOT_ITER BOOT_TRANSPORTS BOOT_VCPUS BOOT_MEM_MIB BOOT_KERNELS BOOT_SECCOMP \
	RESTORE_ITER RESTORE_MEM_MIB RESTORE_CLONES DEV_ITER CRNG_WAIT RNG_MIB RNG_APPEND \
	BENCH_SECCOMP BLK_COMBOS FIO_SECONDS IPERF_SECONDS FIO_STRESS_SECONDS FIO_STRESS_SEPARATE SNAP_CYCLES \
	PEER_CASES PEER_WORK PEER_BLK_JOBS KUT_ONLY KUT_TIMEOUT KUT_BENCH_RUNS; do
	eval "val=\${$v:-}"
	[ -z "$val" ] || echo "$v='$val'" >>"$root/tests/env"
done
# The boot tests' fio stress cases mount the tools disk in the guest.
[ "$mode" = tests ] && [ "$kind" != x86 ] && cp "$top/build/guest/tools.ext4" "$root/build/guest/"
# Debian's curl (/usr/bin/curl, its libraries in /usr/lib/TRIPLET, its loader), for the boot
# tests that drive microvm's HTTP API over its Unix socket.
[ "$mode" != tests ] || "$here/fetch-curl.sh" "$debarch" "$root"
case "$mode" in
bench-x86)
	# QEMU (QEMU_TREE: its binary, libraries and firmware, at their paths) and the guest
	# whose init powers off at once.
	cp -a "$QEMU_TREE"/. "$root/"
	cp "$top/build/guest-x86_64/initramfs-poweroff.cpio.gz" "$root/build/guest-x86_64/"
	;;
bench-peers)
	# The peers (PEERS_DIR: lkvm, kvm-host, microvm-base, those built) and a guest whose
	# init powers off at once.
	mkdir -p "$root/peers"
	[ -z "${PEERS_DIR:-}" ] || cp -a "$PEERS_DIR"/. "$root/peers/"
	cp "$top/build/guest/initramfs-poweroff.cpio.gz" "$root/build/guest/"
	;;
kut)
	# The tests (KUT_DIR: .flat files and unittests.cfg) and kvmtool (PEERS_DIR/lkvm).
	mkdir -p "$root/kut" "$root/peers"
	cp -a "$KUT_DIR"/. "$root/kut/"
	[ ! -x "${PEERS_DIR:-}/lkvm" ] || cp "$PEERS_DIR/lkvm" "$root/peers/"
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
# The machine to run follows the host kind (mvl1=run).
if [ "$kind" = x86 ]; then
	l1args="console=ttyS0 quiet panic=-1 nokaslr mvmachine=x86_64"
	# TCG emulates SVM with nested paging; the EPYC model's other missing features only warn.
	# One CPU: with two, TCG was seen to run a stale int3 of the host kernel's own text
	# patching (a static branch KVM flips as VMs come and go) and oops the host, and a
	# guest's kernel to triple-fault; with one TCG thread for two CPUs (thread=single) a
	# guest took minutes to boot. (With one CPU the host was seen to stop answering twice in
	# about a dozen runs: make check asks QEMU what its CPU was doing, then starts the host
	# again from the unit of tests it stopped in.)
	set -- qemu-system-x86_64 -M q35 -accel tcg -cpu EPYC,+svm,+npt -smp 1
else
	l1args="console=ttyAMA0 quiet panic=-1 nokaslr"
	[ "$kind" = gicv3 ] && l1args="$l1args mvmachine=virt-gicv3"
	set -- qemu-system-aarch64 -M "virt,virtualization=on,gic-version=$gic" -cpu cortex-a76
fi
[ "$kind" = x86 ] || set -- "$@" -smp 2
set -- "$@" -m 3G -nic none -display none -no-reboot -kernel "$l1kernel" \
	-initrd "$cpio" -append "$l1args mvl1=$mode${mvargs:+ mvargs=$mvargs}"
[ -z "${L1_DISK:-}" ] ||
	set -- "$@" -drive "file=$L1_DISK,if=none,id=l1disk,format=raw" -device virtio-blk-pci,drive=l1disk
# MONITOR=PATH: QEMU's monitor on a Unix socket at PATH, and the host kernel's package in
# PATH.kernel. make check asks the monitor what the emulated CPUs were doing when a host's
# console went silent (and names their code from a kallsyms run of that kernel).
if [ -n "${MONITOR:-}" ]; then
	rm -f "$MONITOR"
	echo "$pkg $(basename "$kdir")" >"$MONITOR.kernel"
	set -- "$@" -monitor "unix:$MONITOR,server=on,wait=off"
fi
if [ "$mode" = run ]; then
	exec "$@" -chardev stdio,id=con,signal=off -serial chardev:con
fi
"$@" -serial stdio </dev/null
