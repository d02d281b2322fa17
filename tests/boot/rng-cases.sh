# virtio-rng boot tests, sourced by tests/boot/cases.sh (its helpers and counters).

# Two entropy devices: rng0 on virtio-mmio without a limit, rng1 on PCI limited to 1 KiB/s
# in bursts of 256 bytes (below what the emulated host's round trips would reach without a
# limit). The guest's hwrng core lists both; 4 KiB read from each through
# /dev/hwrng arrive whole and differ, and the limited one made the guest wait for its bucket
# (its exit report counts the waits; the unit tests time the limit itself: the emulated host's
# round trips are too slow for a time to tell the two devices apart).
rng_case() {
	start rng --set rng0.type=virtio-rng --set rng1.type=virtio-rng \
		--set rng1.transport=pci --set rng1.rate_limit=1K --set rng1.rate_burst=256
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'dmesg -n 1; h=/sys/class/misc/hw_random; echo RNGS=$(cat $h/rng_available)'
	type_line 'for r in virtio_rng.0 virtio_rng.1; do echo $r >$h/rng_current; n=$(head -c 4096 /dev/hwrng | tee /tmp/r | wc -c); echo "RNG $r $n $(sha256sum </tmp/r | cut -c1-16)"; done; echo RNG-DONE'
	wait_for "^RNG-DONE" 1 60
	type_line 'echo CRNG=$(dmesg | grep -c "crng init done")'
	wait_for "^CRNG=" 1 10
	type_line 'poweroff -f'
	finish 60
	grep '^RNG ' "$out"
	expect rng "the guest's hwrng core lists both devices" \
		sh -c "grep '^RNGS=' '$out' | grep -q 'virtio_rng.0.*virtio_rng.1'"
	expect rng "4 KiB read from each, whole" \
		test "$(grep -c '^RNG virtio_rng.[01] 4096 ' "$out")" = 2
	expect rng "the two devices' bytes differ" \
		test "$(grep '^RNG virtio_rng' "$out" | cut -d' ' -f4 | sort -u | wc -l)" = 2
	expect rng "the exit report: rng1 made the guest wait for its bucket, rng0 never" \
		sh -c "grep -q 'rng1: [0-9]* bytes in [0-9]* requests, [1-9][0-9]* waits' '$out' &&
			grep -q 'rng0: [0-9]* bytes in [0-9]* requests, 0 waits' '$out'"
	expect rng "the exit report: each gave at least the 4 KiB read" \
		sh -c "grep 'rng[01]: [0-9]* bytes' '$out' | awk '\$3 >= 4096 { n++ } END { exit n != 2 }'"
	expect rng "the guest's generator was seeded" has "^CRNG=1"
	expect rng "exit 0 (got $status)" test "$status" = 0
}

# rngpoke (tests/boot/rngpoke.c) drives an entropy device on virtio-mmio itself, the kernel's
# driver unbound: a full ring with one kick, a buffer larger than the device gives, and three
# broken requests that must each set DEVICE_NEEDS_RESET; afterwards the kernel's driver, bound
# again, reads /dev/hwrng through the same device.
rng_poke_case() {
	# (the monitor's warnings about the broken requests apart: they would split result lines)
	ERR=$TMP/rng-poke.err
	start rng-poke --set poke.type=virtio-rng
	ERR=""
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	"$MV" --config "$machine" --set poke.type=virtio-rng --check >"$TMP/rngpoke-check.out" 2>&1
	base=$(sed -n 's/.*poke: virtio-rng.*virtio-mmio at \(0x[0-9a-f]*\),.*/\1/p' "$TMP/rngpoke-check.out")
	type_line 'dmesg -n 1; for d in /sys/bus/virtio/devices/*; do [ "$(cat $d/device)" = 0x0004 ] && v=${d##*/}; done; echo $v >/sys/bus/virtio/drivers/virtio_rng/unbind && echo UNBOUND'
	wait_for "^UNBOUND" 1 30
	type_line "rngpoke ${base:-0x0a000000}"
	wait_for "^RNGPOKE-DONE" 1 120
	type_line 'echo $v >/sys/bus/virtio/drivers/virtio_rng/bind; echo virtio_rng.0 >/sys/class/misc/hw_random/rng_current; echo REBOUND=$(head -c 1024 /dev/hwrng | wc -c)'
	wait_for "^REBOUND=" 1 60
	type_line 'poweroff -f'
	finish 60
	expect rng-poke "a full ring of 64 buffers, one kick: all filled, no reset" \
		has "^FULL=64 BAD=0 NEEDS-RESET=0"
	expect rng-poke "a 128 KiB buffer gets 64 KiB, nothing past it, no reset" \
		has "^BIG-LEN=65536 NEEDS-RESET=0 PAST-64K-ZERO=1"
	expect rng-poke "a buffer the device can only read sets DEVICE_NEEDS_RESET" \
		has "^READABLE-NEEDS-RESET=1"
	expect rng-poke "a reset clears it" has "^RESET-STATUS=0"
	expect rng-poke "a buffer outside RAM sets DEVICE_NEEDS_RESET" has "^OUTSIDE-NEEDS-RESET=1"
	expect rng-poke "a chain looping on itself sets DEVICE_NEEDS_RESET" has "^LOOP-NEEDS-RESET=1"
	expect rng-poke "the kernel's driver bound again reads /dev/hwrng" has "^REBOUND=1024"
	expect rng-poke "the monitor said why each broken request needs a reset" \
		test "$(grep -c 'poke: queue 0: .*device needs a reset' "$TMP/rng-poke.err")" = 3
	expect rng-poke "exit 0 (got $status)" test "$status" = 0
}
