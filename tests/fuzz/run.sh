#!/bin/sh
# Runs each libFuzzer target for SECONDS, all at once (they are independent), and prints
# each one's executions, coverage and corpus size; exit 1 if any found a problem.
# Usage: run.sh SECONDS TARGET...
secs=$1
shift
status=0
for t in "$@"; do
	name=$(basename "$t")
	corpus=build/fuzz/corpus-$name
	mkdir -p "$corpus"
	# A target that knows how to seed its corpus does so once.
	[ -n "$(ls "$corpus")" ] || MICROVM_FUZZ_SEEDS=$corpus "$t" -runs=0 >/dev/null 2>&1
	# -close_fd_mask=2: the monitor's warnings about the guest's mistakes stay out of the
	# report (libFuzzer keeps its own output and crash reports).
	"$t" -max_total_time="$secs" -print_final_stats=1 -close_fd_mask=2 "$corpus" \
		>"build/fuzz/$name.log" 2>&1 &
done
for t in "$@"; do
	wait -n 2>/dev/null || wait
done
wait
for t in "$@"; do
	name=$(basename "$t")
	log=build/fuzz/$name.log
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	units=$(ls "build/fuzz/corpus-$name" | wc -l)
	if grep -q 'ERROR: \|==ERROR\|deadly signal\|Test unit written' "$log" || [ -z "$execs" ]; then
		echo "fuzz: $name: FAILED (see $log)"
		grep -A30 'ERROR' "$log" | head -n 40
		status=1
	else
		echo "fuzz: $name: $execs executions, coverage $cov edges, corpus $units inputs, no findings"
	fi
done
exit $status
