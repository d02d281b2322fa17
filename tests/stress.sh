#!/bin/sh
# make check-stress: the tests that could fail by chance, run while the machine is busy.
# A CPU hog (STRESS_HOGS busy loops, default one per core) runs beside
#   1. the unit tests (ASan+UBSan), STRESS_UNIT_RUNS times in a row (default 20);
#   2. one emulated host's boot tests (STRESS_HOST, default rpi5; STRESS_ONLY picks groups
#      or units as MVONLY does, default boot), watched for stalls like make check's.
# Every failed run is kept in build/stress-logs/. Ends with "N passed, N failed" (a unit
# run counts once); not part of make check. STRESS_HOST=none skips the boot tests.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
logs=build/stress-logs
rm -rf "$logs"
mkdir -p "$logs"
runs=${STRESS_UNIT_RUNS:-20}
hostkind=${STRESS_HOST:-rpi5}
boot_limit=${BOOT_TEST_SECONDS:-3600}
stall_limit=${BOOT_STALL_SECONDS:-90}
. tests/boot/hosts.sh

jobs=$(nproc 2>/dev/null || echo 2)
make -j"$jobs" SANITIZE=1 build/asan/unit-tests >"$logs/build.log" 2>&1 ||
	{ echo "check-stress: the unit tests do not build (see $logs/build.log)"; exit 1; }
if [ "$hostkind" != none ]; then
	target=CROSS_COMPILE=aarch64-linux-gnu-
	[ "$hostkind" = x86 ] && target="STATIC=1 build/x86_64/microvm"
	# shellcheck disable=SC2086
	make -j"$jobs" $target >>"$logs/build.log" 2>&1 && make guest >>"$logs/build.log" 2>&1 &&
		{ [ "$hostkind" != x86 ] || make guest-x86_64 >>"$logs/build.log" 2>&1; } ||
		{ echo "check-stress: microvm or the guest images do not build (see $logs/build.log)"; exit 1; }
fi

hogs=""
for i in $(seq "${STRESS_HOGS:-$jobs}"); do
	sh -c 'while :; do :; done' &
	hogs="$hogs $!"
done
# shellcheck disable=SC2086
trap 'kill $hogs 2>/dev/null' EXIT INT TERM
echo "check-stress: ${STRESS_HOGS:-$jobs} busy loops beside the tests (load $(cut -d' ' -f1-3 /proc/loadavg))"

passed=0
failed=0
t0=$(date +%s)
for i in $(seq "$runs"); do
	tests/unit/run.sh build/asan/unit-tests "$logs" >"$logs/unit.result"
	last=$(tail -n 1 "$logs/unit.result")
	case "$last" in
	*" 0 failed")
		passed=$((passed + 1))
		;;
	*)
		failed=$((failed + 1))
		mkdir -p "$logs/unit-$i"
		cp "$logs/unit.log" "$logs/unit.stderr" "$logs/unit.result" "$logs/unit-$i/"
		echo "check-stress: unit run $i: $last (see $logs/unit-$i/)"
		grep -v 'passed, [0-9]* failed$' "$logs/unit.result" | sed 's/^/    /'
		;;
	esac
done
echo "check-stress: unit tests: $runs runs in $(($(date +%s) - t0)) s beside the hog: $passed" \
	"passed, $failed failed"

if [ "$hostkind" != none ]; then
	t0=$(date +%s)
	export MVONLY=${STRESS_ONLY:-boot}
	boot_host "$hostkind"
	counts=$(boot_counts "$logs/boot-$hostkind.log")
	echo "check-stress: boot-$hostkind (MVONLY=${STRESS_ONLY:-boot}) in" \
		"$(($(date +%s) - t0)) s beside the hog: $counts"
	host_report "$hostkind"
	passed=$((passed + $(echo "$counts" | cut -d' ' -f1)))
	failed=$((failed + $(echo "$counts" | cut -d' ' -f3)))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
