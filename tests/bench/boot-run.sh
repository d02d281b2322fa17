#!/bin/sh
# make bench-boot: runs tests/bench/boot.sh in each emulated host (or natively on an arm64
# board with KVM) and writes build/bench/boot/: boot.csv (every boot), boot.md (min, median,
# p95 and max per phase and case) and plots (PNG and SVG). The matrix and the iteration count
# come from BOOT_ITER, BOOT_TRANSPORTS, BOOT_VCPUS, BOOT_MEM_MIB, BOOT_KERNELS, BOOT_SECCOMP
# (see boot.sh).
# BENCH_REPORT_ONLY=1 rewrites the report from the logs of the last run.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=build/bench/boot
. tests/bench/hosts.sh
bench_setup "$out"
csvs=""
where=""
for kind in $kinds; do
	log=$out/boot-$kind.log
	[ -n "${BENCH_REPORT_ONLY:-}" ] || bench_in_host boot "$kind" "$log"
	sed -n 's/^MVCSV //p' "$log" | tr -d '\r' >"$out/boot-$kind.csv"
	csvs="$csvs $out/boot-$kind.csv"
	where="${where:+$where; }$(bench_where "$log")"
done
# shellcheck disable=SC2086
tests/bench/boot-report.sh "$out" "$where" $csvs
cat "$out/boot.md"
