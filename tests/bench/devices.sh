#!/bin/sh
# Device benchmark, run where microvm runs (inside an emulated host: rpi5, gicv3 or x86, or
# natively on an arm64 board with KVM). virtio-rng: DEV_ITER boots (default 5) of each kind,
# taking turns: without an entropy device, with one (its kicks trap: the vCPU that kicks
# fills the buffer), and with one whose kicks wake the event loop (ioeventfd = on). Each gives the guest kernel's time to "random:
# crng init done" (its own clock, seconds since it started; a boot where it did not come
# within CRNG_WAIT seconds of the shell, default 20, says so); with a device also how fast
# /dev/hwrng reads (RNG_MIB MiB, default 1, through the guest's hwrng core). The guest gets
# RNG_APPEND (default random.trust_cpu=off: KVM offers arm64 guests the SMCCC TRNG, and x86-64
# CPUs have RDSEED, which seed a trusting kernel's generator before anything else runs).
# Prints "MVCSV rng,..." rows, progress on stderr.
MV=${MV:-/microvm}
MVDIR=${MVDIR:-/}
HOSTKIND=${HOSTKIND:-rpi5}
ITER=${DEV_ITER:-5}
CRNG_WAIT=${CRNG_WAIT:-20}
RNG_MIB=${RNG_MIB:-1}
RNG_APPEND=${RNG_APPEND-random.trust_cpu=off}
TMP=${TMPDIR:-/tmp}/mvdevices.$$
mkdir -p "$TMP"
machine=$MVDIR/machines/rpi5.ini
[ "$HOSTKIND" = gicv3 ] && machine=$MVDIR/machines/virt-gicv3.ini
[ "$HOSTKIND" = x86 ] && machine=$MVDIR/machines/x86_64.ini

# wait_in FILE PATTERN SECONDS: until PATTERN is in FILE
wait_in() {
	n=0
	until grep -q -- "$2" "$1" 2>/dev/null || [ $n -ge $(($3 * 10)) ]; do
		n=$((n + 1))
		sleep 0.1
	done
	grep -q -- "$2" "$1" 2>/dev/null
}
# boot_vm NAME ARGS...: a VM with a console FIFO (fd 3); sets $pid, $out
boot_vm() {
	name=$1
	shift
	out=$TMP/$name.out
	rm -f "$TMP/$name.in" "$out"
	mkfifo "$TMP/$name.in"
	"$MV" -v --config "$machine" "$@" <"$TMP/$name.in" >"$out" 2>&1 &
	pid=$!
	exec 3>"$TMP/$name.in"
}
say() { (trap '' PIPE; echo "$1" >&3) 2>/dev/null; }
# end_vm: power the guest off, wait for microvm
end_vm() {
	say 'poweroff -f'
	exec 3>&-
	n=0
	while kill -0 "$pid" 2>/dev/null && [ $n -lt 600 ]; do
		n=$((n + 1))
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid"
}

echo "MVCSV rng,host,iteration,device,crng_init_s,hwrng_kib_s"
for i in $(seq "$ITER"); do
	for dev in none virtio-rng virtio-rng-eventfd; do
		echo "bench-devices: rng, iteration $i/$ITER, $dev" >&2
		set --
		[ -z "$RNG_APPEND" ] || set -- --append "$RNG_APPEND"
		[ "$dev" = none ] || set -- "$@" --set rng0.type=virtio-rng
		[ "$dev" != virtio-rng-eventfd ] || set -- "$@" --set rng0.ioeventfd=on
		boot_vm "rng-$dev-$i" "$@"
		if ! wait_in "$out" "microvm:/#" 300; then
			echo "bench-devices: no shell:" >&2
			tail -n 5 "$out" >&2
		fi
		say 'dmesg -n 1'
		rate=""
		if [ "$dev" != none ]; then
			say "a=\$(cut -d' ' -f1 /proc/uptime); head -c $((RNG_MIB << 20)) /dev/hwrng | wc -c; b=\$(cut -d' ' -f1 /proc/uptime); echo HWRNG \$a \$b"
			wait_in "$out" "^HWRNG " 300
			rate=$(tr -d '\r' <"$out" | awk -v mib="$RNG_MIB" '/^HWRNG / && $3 > $2 {
				printf "%.0f", mib * 1024 / ($3 - $2) }')
		fi
		# The kernel's own line, with its timestamp: when its generator was ready.
		say "n=0; until dmesg | grep -q 'crng init done' || [ \$n -ge $CRNG_WAIT ]; do sleep 1; n=\$((n+1)); done; echo CRNG \$(dmesg | sed -n 's/^\\[ *\\([0-9.]*\\)\\] random: crng init done.*/\\1/p')"
		wait_in "$out" "^CRNG" $((CRNG_WAIT + 30))
		crng=$(tr -d '\r' <"$out" | sed -n 's/^CRNG \([0-9.]*\)$/\1/p' | head -n 1)
		end_vm
		echo "MVCSV rng,$HOSTKIND,$i,$dev,${crng:-none},$rate"
	done
done
rm -rf "$TMP"
