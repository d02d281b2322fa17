#!/bin/sh
# make bench-devices: runs tests/bench/devices.sh in each emulated host (or natively on an
# arm64 board with KVM) and writes build/bench/devices/devices.md: the guest's entropy with and
# without virtio-rng (medians of DEV_ITER boots each, interleaved).
# BENCH_REPORT_ONLY=1 rewrites the report from the logs of the last run.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=build/bench/devices
. tests/bench/hosts.sh
bench_setup "$out"
kinds=${BENCH_KINDS:-rpi5}
case " $kinds " in
*" x86 "*) [ -n "${BENCH_REPORT_ONLY:-}" ] || make -s -j"$(nproc)" STATIC=1 build/x86_64/microvm guest-x86_64 ;;
esac
md=$out/devices.md
# median: of the numbers on stdin ("none" when there are none)
median() { sort -n | awk '{ v[NR] = $1 } END { if (!NR) print "none"; else print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
{
	echo "# Devices"
	echo
	echo "make bench-devices; medians of DEV_ITER boots, the kinds taking turns. virtio-rng: its"
	echo "default ioeventfd = off (the vCPU that kicks fills the buffer); virtio-rng-eventfd:"
	echo "ioeventfd = on (the event loop does). The guest's command line has"
	echo "RNG_APPEND (default random.trust_cpu=off: otherwise the SMCCC TRNG KVM offers arm64"
	echo "guests, or RDSEED on x86-64, seeds the generator before anything else runs)."
} >"$md"
for kind in $kinds; do
	log=$out/devices-$kind.log
	[ -n "${BENCH_REPORT_ONLY:-}" ] || bench_in_host devices "$kind" "$log"
	csv=$out/rng-$kind.csv
	tr -d '\r' <"$log" | sed -n 's/^MVCSV rng,//p' >"$csv"
	{
		echo
		echo "## virtio-rng, $kind host"
		echo
		echo "$(bench_where "$log")"
		echo
		echo "| device | boots | crng ready (guest s), median | boots where it was not ready | /dev/hwrng KiB/s, median |"
		echo "| --- | --- | --- | --- | --- |"
		for dev in none virtio-rng virtio-rng-eventfd; do
			rows=$(grep "^[a-z0-9]*,[0-9]*,$dev," "$csv" || true)
			n=$(echo "$rows" | grep -c . || true)
			crng=$(echo "$rows" | cut -d, -f4 | grep -v none | median)
			never=$(echo "$rows" | cut -d, -f4 | grep -c none || true)
			rate=$(echo "$rows" | cut -d, -f5 | grep . | median)
			[ "$dev" != none ] || rate="(no device)"
			echo "| $dev | $n | $crng | $never | $rate |"
		done
	} >>"$md"
done
cat "$md"
