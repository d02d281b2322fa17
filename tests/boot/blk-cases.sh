# Block device stress and misbehaving-driver cases, sourced by tests/boot/cases.sh (which
# has start, wait_for, type_line, finish, expect, has and TMP). MVONLY=blk-poke,fio-qd256
# runs them alone.
#
# fio at queue depth 256 (Linux keeps as many requests in flight as the ring holds): random
# writes with sha256 verification, then random reads, FIO_STRESS_SECONDS each, on a disk on
# virtio-mmio and on PCI with each engine. By default the four disks are in one guest and
# one fio runs a job on each at once (the most stress in the least time); with
# FIO_STRESS_SEPARATE=1 each gets a guest of its own, one after the other, for figures per
# transport and engine. The disks must keep working, the guest's kernel log must show no
# virtio or I/O errors, and what the guest reads must be what the host holds.
# Then blkpoke (tests/boot/blkpoke.c) drives a disk from the guest's user space.
FIO_STRESS_SECONDS=${FIO_STRESS_SECONDS:-30}
TOOLS_DISK=$MVDIR/build/guest/tools.ext4
STRESS_COMBOS="mmio-io_uring mmio-sync pci-io_uring pci-sync mmio-inline"

# fio_iops JOB FIELD: IOPS of the read (8) or write (49) side of JOB's terse line
fio_iops() { grep "^FIO=3;[^;]*;$1;" "$out" | tr -d '\r' | cut -d';' -f"$2" | head -n 1; }

# stress_guest NAME COMBO...: one guest with a 16 MiB disk per COMBO (transport-engine,
# named s_transport_engine), fio on all of them at once; then the checks for each
stress_guest() {
	name=$1
	shift
	disks=""
	jobs=""
	for combo in "$@"; do
		disk=s_$(echo "$combo" | tr -- '-' '_')
		rm -f "$TMP/$disk.img"
		dd if=/dev/zero of="$TMP/$disk.img" bs=1M count=16 2>/dev/null
		disks="$disks --set $disk.type=virtio-blk --set $disk.path=$TMP/$disk.img"
		disks="$disks --set $disk.transport=${combo%-*} --set $disk.engine=${combo#*-}"
		jobs="$jobs --name=$disk --filename=\$(dev $disk)"
	done
	# shellcheck disable=SC2086
	start "$name" --set machine.vcpus=2 --set memory.size=256M \
		--set tools.type=virtio-blk --set tools.path="$TOOLS_DISK" --set tools.readonly=on \
		$disks
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'stty cols 500'
	type_line 'dev() { for d in /sys/block/vd*; do [ "$(cat $d/serial)" = $1 ] && echo /dev/${d##*/}; done; }'
	type_line 'mkdir -p /mnt && mount -o ro $(dev tools) /mnt && echo MOUNTED'
	wait_for "^MOUNTED" 1 30
	common="--direct=1 --ioengine=libaio --iodepth=256 --bs=4k --size=16m"
	common="$common --runtime=$FIO_STRESS_SECONDS --time_based --output-format=terse"
	limit=$((FIO_STRESS_SECONDS * 4 + 120))
	type_line "/mnt/bin/fio $common --rw=randwrite --verify=sha256 --verify_backlog=4096 --verify_fatal=1 $jobs | sed 's/^/FIO=/'; echo FIO-W-RC=\$?"
	wait_for "^FIO-W-RC=" 1 $limit
	# The read jobs' names get an r_ prefix: their terse lines apart from the write jobs'.
	type_line "/mnt/bin/fio $common --rw=randread $(echo "$jobs" | sed 's/--name=/--name=r_/g') | sed 's/^/FIO=/'; echo FIO-R-RC=\$?"
	wait_for "^FIO-R-RC=" 1 $limit
	for combo in "$@"; do
		disk=s_$(echo "$combo" | tr -- '-' '_')
		type_line "echo SUM_$disk=\$(sha256sum \$(dev $disk) | cut -d' ' -f1)"
	done
	type_line "dmesg | grep -iE 'virtio|blk_update|I/O error|vd[a-z]' | grep -iE 'error|fail|reset|timeout|hung' | sed 's/^/DMESG-ERR=/'"
	type_line 'for d in $(ls /sys/block); do dd if=/dev/$d of=/dev/null bs=4096 count=64 iflag=direct 2>/dev/null || echo DEAD=$d; done; echo DISKS-CHECKED'
	wait_for "^DISKS-CHECKED" 1 120
	type_line 'poweroff -f'
	finish 60
	expect "$name" "fio finished both runs (write rc $(sed -n 's/^FIO-W-RC=//p' "$out" | tr -d '\r'), read rc $(sed -n 's/^FIO-R-RC=//p' "$out" | tr -d '\r'))" \
		sh -c "grep -q '^FIO-W-RC=0' '$out' && grep -q '^FIO-R-RC=0' '$out'"
	expect "$name" "every disk still works afterwards" sh -c "grep -q '^DISKS-CHECKED' '$out' && ! grep -q '^DEAD=' '$out'"
	expect "$name" "no virtio or I/O errors in the guest's kernel log" sh -c "! grep -q '^DMESG-ERR=' '$out'"
	expect "$name" "exit 0 (got $status)" test "$status" = 0
	# (expect uses c and d: the disk is "disk" here)
	for combo in "$@"; do
		disk=s_$(echo "$combo" | tr -- '-' '_')
		wiops=$(fio_iops "$disk" 49)
		riops=$(fio_iops "r_$disk" 8)
		echo "MVTIME $name $combo depth 256: randwrite ${wiops:-?} IOPS (sha256-verified), randread ${riops:-?} IOPS$([ $# -gt 1 ] && echo ", $# disks at once")"
		expect "$name" "$combo: writes verified at depth 256 (${wiops:-no result} IOPS), reads (${riops:-no result} IOPS)" \
			sh -c "[ '${wiops:-0}' -gt 0 ] && [ '${riops:-0}' -gt 0 ]"
		expect "$name" "$combo: the guest reads what the host image holds (sha256)" \
			has "^SUM_$disk=$(sha256sum <"$TMP/$disk.img" | cut -d' ' -f1)"
		rm -f "$TMP/$disk.img"
	done
}

blk_stress_cases() {
	if [ ! -f "$TOOLS_DISK" ]; then
		result fio-qd256 FAIL "no tools disk at $TOOLS_DISK (make guest builds it)"
		return
	fi
	if [ "${FIO_STRESS_SEPARATE:-0}" = 1 ]; then
		for combo in $STRESS_COMBOS; do
			stress_guest "fio-qd256-$combo" "$combo"
		done
	else
		# shellcheck disable=SC2086
		stress_guest fio-qd256 $STRESS_COMBOS
	fi
}

# blkpoke on a 4 MiB disk of random data: it writes sectors 0-255 only, the rest must stay.
blk_poke_case() {
	dd if=/dev/urandom of="$TMP/poke.img" bs=1M count=4 2>/dev/null
	rest_sum=$(tail -c +$((256 * 512 + 1)) "$TMP/poke.img" | sha256sum | cut -d' ' -f1)
	ERR=$TMP/blk-poke.err
	start blk-poke --set machine.vcpus=2 --set memory.size=256M \
		--set poke.type=virtio-blk --set poke.path="$TMP/poke.img"
	ERR=""
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	"$MV" --config "$machine" --set poke.type=virtio-blk --set poke.path="$TMP/poke.img" \
		--check >"$TMP/poke-check.out" 2>&1
	base=$(sed -n 's/.*poke: virtio-blk.*virtio-mmio at \(0x[0-9a-f]*\),.*/\1/p' "$TMP/poke-check.out")
	type_line 'stty cols 500'
	type_line 'dev() { for d in /sys/block/vd*; do [ "$(cat $d/serial)" = $1 ] && echo /dev/${d##*/}; done; }'
	type_line 'v=$(basename $(dev poke)); d=$(basename $(readlink /sys/block/$v/device)); echo $d >/sys/bus/virtio/drivers/virtio_blk/unbind && echo UNBOUND'
	wait_for "^UNBOUND" 1 30
	type_line "blkpoke ${base:-0x0a000000}"
	wait_for "^BLKPOKE-DONE" 1 120
	type_line 'echo $d >/sys/bus/virtio/drivers/virtio_blk/bind; sleep 1; dd if=$(dev poke) bs=512 count=256 2>/dev/null | sha256sum | sed "s/ .*//; s/^/REBOUND-SUM=/"'
	wait_for "^REBOUND-SUM=" 1 60
	type_line 'poweroff -f'
	finish 60
	expect blk-poke "a full ring of 256 writes, one kick: all complete, no reset" \
		has "^FULL-WRITE=256 BAD=0 NEEDS-RESET=0"
	expect blk-poke "a full ring of 256 reads, one kick: all complete with the data written" \
		has "^FULL-READ=256 BAD=0 NEEDS-RESET=0"
	expect blk-poke "a stopped queue's size and rings stay frozen" has "^LAYOUT-NUM=64 READY=0"
	expect blk-poke "nothing lands where the driver moved the rings" has "^LAYOUT-ALT-CHANGED=0"
	expect blk-poke "enabling a queue after DRIVER_OK sets DEVICE_NEEDS_RESET" \
		has "^REENABLE-NEEDS-RESET=1"
	expect blk-poke "reset after the layout case" has "^RESET-STATUS=0"
	expect blk-poke "QueueReady toggled with reads in flight, then a reset" \
		has "^TOGGLE-RESET-STATUS=0"
	expect blk-poke "a buffer outside RAM sets DEVICE_NEEDS_RESET" has "^OUTSIDE-NEEDS-RESET=1"
	expect blk-poke "an ldp from the registers (no syndrome) is an external abort: SIGBUS" \
		has "^NISV=SIGBUS"
	expect blk-poke "the device answers after it" has "^NISV-AFTER-MAGIC=74726976"
	# blkpoke read its writes back through the device; the rebound kernel driver must read
	# the same sectors as the host image holds them.
	expect blk-poke "the rebound kernel driver reads sectors 0-255 as the host holds them" \
		has "^REBOUND-SUM=$(head -c $((256 * 512)) "$TMP/poke.img" | sha256sum | cut -d' ' -f1)"
	expect blk-poke "the image past sector 255 is unchanged on the host" \
		test "$(tail -c +$((256 * 512 + 1)) "$TMP/poke.img" | sha256sum | cut -d' ' -f1)" = "$rest_sum"
	expect blk-poke "microvm kept running: exit 0 (got $status)" test "$status" = 0
	rm -f "$TMP/poke.img"
}
