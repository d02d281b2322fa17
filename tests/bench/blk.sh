#!/bin/sh
# Block benchmark, run inside an emulated host (or natively on an arm64 board with KVM): the
# same fio jobs on a 256 MiB image file directly in this host (the limit), then inside a
# guest whose /dev/vdb is that image: virtio-mmio and virtio-pci (MSI-X), each with the
# io_uring and the sync engine. Jobs (O_DIRECT, libaio, FIO_SECONDS each): 4 KiB random
# read and write at queue depth 1 and 32, 1 MiB sequential read and write at depth 4.
# fio comes from TOOLS (tools tree of guest-images/build-tools.sh) or PATH; the guest mounts
# the tools disk. Prints "MVBENCH WHERE CASE JOB MB/s IOPS" and
# "MVEXITS CASE EXITS MMIO-EXITS REQUESTS TRAPPED" (TRAPPED: exits on the disk's own registers).
# BENCH_SECCOMP="on off" runs each guest case with and without the sandbox's filters, one
# after the other (cases without them are named CASE-seccomp-off; "on off off on" repeats
# them in ABBA order). BLK_COMBOS picks the guest cases (TRANSPORT-ENGINE).
MV=${MV:-/microvm}
MVDIR=${MVDIR:-/}
HOSTKIND=${HOSTKIND:-rpi5}
SECS=${FIO_SECONDS:-5}
FIO=fio
[ -n "${TOOLS:-}" ] && FIO=$TOOLS/bin/fio
TMP=${TMPDIR:-/tmp}/mvbench.$$
mkdir -p "$TMP"
machine=$MVDIR/machines/rpi5.ini
[ "$HOSTKIND" = gicv3 ] && machine=$MVDIR/machines/virt-gicv3.ini
JOBS="randread-qd1 randread-qd32 randwrite-qd1 randwrite-qd32 read-1m write-1m"

# fio_cmd FIO FILE JOB: the command line of one job, printing one terse line
fio_cmd() {
	case $3 in
	randread-qd1) a="--rw=randread --bs=4k --iodepth=1" ;;
	randread-qd32) a="--rw=randread --bs=4k --iodepth=32" ;;
	randwrite-qd1) a="--rw=randwrite --bs=4k --iodepth=1" ;;
	randwrite-qd32) a="--rw=randwrite --bs=4k --iodepth=32" ;;
	read-1m) a="--rw=read --bs=1m --iodepth=4" ;;
	write-1m) a="--rw=write --bs=1m --iodepth=4" ;;
	esac
	echo "$1 --name=$3 --filename=$2 --direct=1 --ioengine=libaio $a --size=256m" \
		"--runtime=$SECS --time_based --output-format=terse"
}

# result WHERE CASE JOB: MB/s and IOPS from a terse line on stdin (fields 7/8 read, 48/49 write)
result() {
	awk -F';' -v w="$1" -v c="$2" -v j="$3" '$1 == 3 {
		kb = $7 + $48; io = $8 + $49
		printf "MVBENCH %s %s %s %.1f %.0f\n", w, c, j, kb * 1024 / 1e6, io
	}'
}

dd if=/dev/zero of="$TMP/disk.img" bs=1M count=256 2>/dev/null
echo "bench-blk: host file (the limit), then 4 guest cases" >&2
for job in $JOBS; do
	# shellcheck disable=SC2046
	$(fio_cmd "$FIO" "$TMP/disk.img" $job) 2>/dev/null | result host file $job
done

idx=0
for combo in ${BLK_COMBOS:-mmio-io_uring mmio-sync pci-io_uring pci-sync}; do for sc in ${BENCH_SECCOMP:-on}; do
	idx=$((idx + 1))
	transport=${combo%-*}
	engine=${combo#*-}
	case=$combo
	[ "$sc" = on ] || case=$combo-seccomp-$sc
	echo "bench-blk: guest case $idx ($case)" >&2
	rm -f "$TMP/in" "$TMP/out"
	mkfifo "$TMP/in"
	"$MV" -v --config "$machine" --set machine.vcpus=2 --set memory.size=512M \
		--set tools.type=virtio-blk --set tools.path="$MVDIR/build/guest/tools.ext4" \
		--set tools.readonly=on \
		--set blk1.type=virtio-blk --set blk1.path="$TMP/disk.img" \
		--set blk1.engine="$engine" --set blk1.transport="$transport" \
		--set machine.seccomp="$sc" <"$TMP/in" >"$TMP/out" 2>&1 &
	pid=$!
	exec 3>"$TMP/in"
	n=0
	while ! grep -q "microvm:/#" "$TMP/out" && [ $n -lt 1200 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	{
		echo "stty cols 500"
		echo 'dev() { for d in /sys/block/vd*; do [ "$(cat $d/serial)" = $1 ] && echo /dev/${d##*/}; done; }'
		echo 'mkdir -p /mnt && mount -o ro $(dev tools) /mnt'
		for job in $JOBS; do
			echo "$(fio_cmd /mnt/bin/fio '$(dev blk1)' $job) | sed 's/^/FIO=/'"
		done
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
	for job in $JOBS; do
		grep "^FIO=3;[^;]*;$job;" "$TMP/out" | tr -d '\r' | sed 's/^FIO=//' |
			result guest "$case" $job
	done
	exits=$(sed -n 's/^microvm: \([0-9]*\) exits to microvm, \([0-9]*\) of them MMIO.*/\1 \2/p' "$TMP/out")
	reqs=$(sed -n 's/^microvm: blk1: \([0-9]*\) requests, \([0-9]*\) trapped.*/\1 \2/p' "$TMP/out")
	echo "MVEXITS $case $exits $reqs"
	if ! grep -q "^BENCH-DONE" "$TMP/out" || ! grep -q "^FIO=3;" "$TMP/out"; then
		echo "MVBENCH-ERROR guest $case"
		tail -n 30 "$TMP/out"
	fi
done; done
rm -rf "$TMP"
echo "MVBENCH-DONE $HOSTKIND"
