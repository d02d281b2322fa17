#!/bin/sh
# Block benchmark, run inside an emulated host (or natively on an arm64 board with KVM):
# iobench on a 128 MiB image directly in this host, then inside a guest whose /dev/vdb is that
# image: virtio-mmio with the io_uring and sync engines, virtio-pci with MSI-X and with INTx.
# Prints "MVBENCH WHERE CASE MODE BS BYTES S MB/s IOPS" and
# "MVEXITS CASE EXITS MMIO-EXITS REQUESTS TRAPPED" (TRAPPED: exits on the disk's own registers).
MV=${MV:-/microvm}
MVDIR=${MVDIR:-/}
IOBENCH=${IOBENCH:-/bin/iobench}
HOSTKIND=${HOSTKIND:-rpi5}
TMP=${TMPDIR:-/tmp}/mvbench.$$
mkdir -p "$TMP"
machine=$MVDIR/machines/rpi5.ini
[ "$HOSTKIND" = gicv3 ] && machine=$MVDIR/machines/virt-gicv3.ini
SEQ_MIB=64
RAND_MIB=16

dd if=/dev/zero of="$TMP/disk.img" bs=1M count=128 2>/dev/null
for mode in write read randread; do
	mib=$SEQ_MIB
	[ $mode = randread ] && mib=$RAND_MIB
	"$IOBENCH" $mode "$TMP/disk.img" $mib | sed 's/^iobench/MVBENCH host file/'
done

for case in mmio-io_uring mmio-sync pci-msix pci-intx; do
	engine=io_uring
	transport=mmio
	extra=""
	case $case in
	mmio-sync) engine=sync ;;
	pci-msix) transport=pci ;;
	pci-intx) transport=pci extra="--set pci.msi=off" ;;
	esac
	cp "$MVDIR/build/guest/rootfs.ext4" "$TMP/root.ext4"
	rm -f "$TMP/in" "$TMP/out"
	mkfifo "$TMP/in"
	# shellcheck disable=SC2086
	"$MV" -v --config "$machine" --set boot.initrd= \
		--append "root=/dev/vda rw init=/init" --set machine.vcpus=2 --set memory.size=256M \
		--set blk0.type=virtio-blk --set blk0.path="$TMP/root.ext4" \
		--set blk1.type=virtio-blk --set blk1.path="$TMP/disk.img" \
		--set blk1.engine=$engine --set blk1.transport=$transport $extra \
		<"$TMP/in" >"$TMP/out" 2>&1 &
	pid=$!
	exec 3>"$TMP/in"
	n=0
	while ! grep -q "microvm:/#" "$TMP/out" && [ $n -lt 1200 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	{
		echo "iobench write /dev/vdb $SEQ_MIB"
		echo "iobench read /dev/vdb $SEQ_MIB"
		echo "iobench randread /dev/vdb $RAND_MIB"
		echo "echo BENCH-DONE"
	} >&3
	n=0
	while ! grep -q "^BENCH-DONE" "$TMP/out" && [ $n -lt 6000 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	(trap '' PIPE; echo "poweroff -f" >&3) 2>/dev/null
	exec 3>&-
	wait $pid
	grep "^iobench " "$TMP/out" | tr -d '\r' | sed "s/^iobench/MVBENCH guest $case/"
	exits=$(sed -n 's/^microvm: \([0-9]*\) exits to microvm, \([0-9]*\) of them MMIO.*/\1 \2/p' "$TMP/out")
	reqs=$(sed -n 's/^microvm: blk1: \([0-9]*\) requests, \([0-9]*\) trapped.*/\1 \2/p' "$TMP/out")
	echo "MVEXITS $case $exits $reqs"
	grep -q "^BENCH-DONE" "$TMP/out" || { echo "MVBENCH-ERROR guest $case"; tail -n 20 "$TMP/out"; }
done
rm -rf "$TMP"
echo "MVBENCH-DONE $HOSTKIND"
