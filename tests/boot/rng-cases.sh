# virtio-rng boot tests, sourced by tests/boot/cases.sh (its helpers and counters).

# Two entropy devices: rng0 on virtio-mmio without a limit, rng1 on PCI limited to 16 KiB/s
# in bursts of 4 KiB. The guest's hwrng core lists both; 64 KiB read from each through
# /dev/hwrng arrive whole and differ, and the limited one cannot have given them in less
# than (64 - 4) / 16 = 3.75 s (a lower bound: the guest's clock is the host's counter).
rng_case() {
	start rng --set rng0.type=virtio-rng --set rng1.type=virtio-rng \
		--set rng1.transport=pci --set rng1.rate_limit=16K --set rng1.rate_burst=4K
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'dmesg -n 1; h=/sys/class/misc/hw_random; echo RNGS=$(cat $h/rng_available)'
	type_line 'for r in $(cat $h/rng_available); do echo $r >$h/rng_current; a=$(cut -d" " -f1 /proc/uptime); n=$(head -c 65536 /dev/hwrng | tee /tmp/r | wc -c); b=$(cut -d" " -f1 /proc/uptime); echo "RNG $r $n $(sha256sum </tmp/r | cut -c1-16) $(awk -v a=$a -v b=$b "BEGIN { print b - a }")"; done; echo RNG-DONE'
	wait_for "^RNG-DONE" 1 60
	type_line 'echo CRNG=$(dmesg | grep -c "crng init done")'
	wait_for "^CRNG=" 1 10
	type_line 'poweroff -f'
	finish 60
	grep '^RNG ' "$out"
	sed -n 's/.*\] random: crng init done.*/MVTIME rng crng init done &/p' "$out"
	expect rng "the guest's hwrng core lists both devices" \
		has "^RNGS=virtio_rng.[01] virtio_rng.[01]"
	expect rng "64 KiB read from each, whole" \
		test "$(grep -c '^RNG virtio_rng.[01] 65536 ' "$out")" = 2
	expect rng "the two devices' bytes differ" \
		test "$(grep '^RNG ' "$out" | cut -d' ' -f4 | sort -u | wc -l)" = 2
	expect rng "the limited device took at least 3.75 s for 64 KiB" \
		sh -c "grep '^RNG ' '$out' | awk '\$5 >= 3.75 { n++ } END { exit n != 1 }'"
	expect rng "its exit report: rng1 waited for its bucket, rng0 never" \
		sh -c "grep -q 'rng1: [0-9]* bytes in [0-9]* requests, [1-9][0-9]* waits' '$out' &&
			grep -q 'rng0: [0-9]* bytes in [0-9]* requests, 0 waits' '$out'"
	expect rng "exit 0 (got $status)" test "$status" = 0
}
