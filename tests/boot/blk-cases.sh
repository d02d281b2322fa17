# Block device stress and misbehaving-driver cases, sourced by tests/boot/cases.sh (which
# has start, wait_for, type_line, finish, expect, has and TMP). MVONLY=blk runs them alone.
#
# fio at queue depth 256 (Linux keeps as many requests in flight as the ring holds): random
# writes with sha256 verification, then random reads, FIO_STRESS_SECONDS each, on
# virtio-mmio and PCI with both engines. The disk must keep working, the guest's kernel log
# must show no virtio or I/O errors, and what the guest reads must be what the host holds.
# Then blkpoke (tests/boot/blkpoke.c) drives a disk from the guest's user space.
FIO_STRESS_SECONDS=${FIO_STRESS_SECONDS:-30}
TOOLS_DISK=$MVDIR/build/guest/tools.ext4

# fio_iops NAME FIELD: IOPS of the read (8) or write (49) side of the terse line fio printed
fio_iops() { grep "^FIO=3;[^;]*;$1;" "$out" | tr -d '\r' | cut -d';' -f"$2" | head -n 1; }

fio_case() { # TRANSPORT ENGINE
	name=fio-qd256-$1-$2
	rm -f "$TMP/stress.img"
	dd if=/dev/zero of="$TMP/stress.img" bs=1M count=32 2>/dev/null
	start "$name" --set machine.vcpus=2 --set memory.size=256M \
		--set tools.type=virtio-blk --set tools.path="$TOOLS_DISK" --set tools.readonly=on \
		--set stress.type=virtio-blk --set stress.path="$TMP/stress.img" \
		--set stress.engine="$2" --set stress.transport="$1"
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'stty cols 500'
	type_line 'dev() { for d in /sys/block/vd*; do [ "$(cat $d/serial)" = $1 ] && echo /dev/${d##*/}; done; }'
	type_line 'mkdir -p /mnt && mount -o ro $(dev tools) /mnt && D=$(dev stress) && echo MOUNTED'
	wait_for "^MOUNTED" 1 30
	common="--filename=\$D --direct=1 --ioengine=libaio --iodepth=256 --bs=4k --size=32m"
	common="$common --runtime=$FIO_STRESS_SECONDS --time_based --output-format=terse"
	type_line "/mnt/bin/fio --name=w $common --rw=randwrite --verify=sha256 --verify_backlog=4096 --verify_fatal=1 | sed 's/^/FIO=/'; echo FIO-W-RC=\$?"
	wait_for "^FIO-W-RC=" 1 $((FIO_STRESS_SECONDS * 4 + 120))
	type_line "/mnt/bin/fio --name=r $common --rw=randread | sed 's/^/FIO=/'; echo FIO-R-RC=\$?"
	wait_for "^FIO-R-RC=" 1 $((FIO_STRESS_SECONDS * 4 + 120))
	type_line 'echo GUESTSUM=$(sha256sum $D | cut -d" " -f1)'
	type_line "dmesg | grep -iE 'virtio|blk_update|I/O error|vd[a-z]' | grep -iE 'error|fail|reset|timeout|hung' | sed 's/^/DMESG-ERR=/'"
	type_line 'dd if=$D of=/dev/null bs=4096 count=256 iflag=direct 2>/dev/null && echo DISK-OK'
	wait_for "^DISK-OK" 1 60
	type_line 'poweroff -f'
	finish 60
	wiops=$(fio_iops w 49)
	riops=$(fio_iops r 8)
	echo "MVTIME $name randwrite ${wiops:-?} IOPS (sha256-verified), randread ${riops:-?} IOPS"
	expect "$name" "fio randwrite at depth 256 with verification: ${wiops:-no result} IOPS" \
		sh -c "grep -q '^FIO=3;' '$out' && grep -q '^FIO-W-RC=0' '$out' && [ '${wiops:-0}' -gt 0 ]"
	expect "$name" "fio randread at depth 256: ${riops:-no result} IOPS" \
		sh -c "grep -q '^FIO-R-RC=0' '$out' && [ '${riops:-0}' -gt 0 ]"
	expect "$name" "the disk still works afterwards" has "^DISK-OK"
	expect "$name" "no virtio or I/O errors in the guest's kernel log" sh -c "! grep -q '^DMESG-ERR=' '$out'"
	hostsum=$(sha256sum <"$TMP/stress.img" | cut -d' ' -f1)
	expect "$name" "the guest reads what the host image holds (sha256)" has "^GUESTSUM=$hostsum"
	expect "$name" "exit 0 (got $status)" test "$status" = 0
}

blk_stress_cases() {
	if [ ! -f "$TOOLS_DISK" ]; then
		result fio-qd256 FAIL "no tools disk at $TOOLS_DISK (make guest builds it)"
		return
	fi
	for tr in mmio pci; do
		for engine in io_uring sync; do
			fio_case $tr $engine
		done
	done
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

blk_cases() {
	blk_poke_case
	blk_stress_cases
	rm -f "$TMP/stress.img"
}
