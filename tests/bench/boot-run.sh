#!/bin/sh
# make bench-boot: runs tests/bench/boot.sh in each emulated host (or natively on an arm64
# board with KVM) and writes build/bench/boot/: boot.csv (every boot), boot.md (min, median,
# p95 and max per phase and case) and plots (PNG and SVG). The matrix and the iteration count
# come from BOOT_ITER, BOOT_TRANSPORTS, BOOT_VCPUS, BOOT_MEM_MIB, BOOT_KERNELS (see boot.sh).
# BENCH_REPORT_ONLY=1 rewrites the report from the logs of the last run.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=build/bench/boot
mkdir -p "$out"
[ -n "${BENCH_REPORT_ONLY:-}" ] || make -s -j"$(nproc)" CROSS_COMPILE=aarch64-linux-gnu-
kinds=${BENCH_KINDS:-rpi5 gicv3}
cpu=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)
[ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
csvs=""
where=""
for kind in $kinds; do
	log=$out/boot-$kind.log
	if [ -z "${BENCH_REPORT_ONLY:-}" ]; then
		echo "bench-boot: $kind host" >&2
		if [ "$(uname -m)" = aarch64 ] && [ -w /dev/kvm ]; then
			MV=build/microvm MVDIR=. HOSTKIND=$kind sh tests/bench/boot.sh >"$log"
			echo "# where: native, $cpu, Linux $(uname -r)" >>"$log"
		else
			# The progress lines arrive on the emulated host's console, with the rest.
			tests/boot/emulated-host.sh "$kind" bench-boot | tee "$log" |
				grep --line-buffered '^boot-bench:' >&2 || true
			echo "# where: emulated $kind host (QEMU TCG, Cortex-A76, Linux" \
				"$(grep -o '^L1: [^,]*' "$log" | cut -c5-)) on $cpu" >>"$log"
		fi
	fi
	sed -n 's/^MVCSV //p' "$log" | tr -d '\r' >"$out/boot-$kind.csv"
	csvs="$csvs $out/boot-$kind.csv"
	where="${where:+$where; }$(sed -n 's/^# where: //p' "$log")"
done
# shellcheck disable=SC2086
tests/bench/boot-report.sh "$out" "$where" $csvs
cat "$out/boot.md"
