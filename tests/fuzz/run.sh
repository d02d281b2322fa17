#!/bin/sh
# Runs each libFuzzer target for SECONDS, all at once (they are independent), and prints
# each one's executions, coverage and corpus size; exit 1 if any found a problem.
# Usage: run.sh SECONDS TARGET...
secs=$1
shift
status=0
# inited LOG: "N R" from a libFuzzer log's "#N INITED ... exec/s: R" (the corpus read: N
# inputs at R a second)
inited() {
	sed -n 's/^#\([0-9]*\)[[:space:]]*INITED.*exec\/s: *\([0-9]*\).*/\1 \2/p' "$1" 2>/dev/null | head -n 1
}
for t in "$@"; do
	name=$(basename "$t")
	corpus=build/fuzz/corpus-$name
	mkdir -p "$corpus"
	# A target that knows how to seed its corpus does so once.
	[ -n "$(ls "$corpus")" ] || MICROVM_FUZZ_SEEDS=$corpus "$t" -runs=0 >/dev/null 2>&1
	# A corpus grown over many runs (to more than 500 inputs and twice its size at the last
	# cut) is cut to the inputs that add coverage before the timed run, whose time includes
	# reading the whole corpus first: a slow target (fuzz_transport runs a few dozen inputs a
	# second) would otherwise spend a short run replaying and never mutate.
	n=$(find "$corpus" -type f | wc -l)
	if [ "$n" -gt 500 ] && [ "$n" -gt $((2 * $(cat "$corpus.cut" 2>/dev/null || echo 0))) ]; then
		rm -rf "$corpus.new" && mkdir "$corpus.new" &&
			"$t" -merge=1 -close_fd_mask=2 "$corpus.new" "$corpus" >"build/fuzz/$name.merge.log" 2>&1 &&
			rm -rf "$corpus" && mv "$corpus.new" "$corpus" &&
			find "$corpus" -type f | wc -l >"$corpus.cut"
	fi
	# The run's time counts from its start, reading the corpus included: SECONDS of fuzzing
	# get the time the last run took to read it on top ("#N INITED ... exec/s: R": N / R).
	replay=$(inited "build/fuzz/$name.log" | awk '$2 > 0 { printf "%d", $1 / $2 + 1 }')
	# -close_fd_mask=2: the monitor's warnings about the guest's mistakes stay out of the
	# report (libFuzzer keeps its own output and crash reports).
	"$t" -max_total_time=$((secs + ${replay:-0})) -print_final_stats=1 -close_fd_mask=2 "$corpus" \
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
	units=$(find "build/fuzz/corpus-$name" -type f | wc -l)
	if grep -q 'ERROR: \|==ERROR\|deadly signal\|Test unit written' "$log" || [ -z "$execs" ]; then
		echo "fuzz: $name: FAILED (see $log)"
		grep -A30 'ERROR' "$log" | head -n 40
		status=1
	else
		read_n=$(inited "$log" | cut -d' ' -f1)
		echo "fuzz: $name: $execs executions ($((execs - ${read_n:-0})) after reading the corpus)," \
			"coverage $cov edges, corpus $units inputs, no findings"
	fi
done
exit $status
