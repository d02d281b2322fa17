# Sourced by the make bench-* drivers (from the top of the tree): where a benchmark runs.

# bench_setup OUT: make OUT, build the static microvm unless BENCH_REPORT_ONLY is set, and set
# kinds (the hosts to run on: BENCH_KINDS, default both)
bench_setup() {
	mkdir -p "$1"
	[ -n "${BENCH_REPORT_ONLY:-}" ] || make -s -j"$(nproc)" CROSS_COMPILE=aarch64-linux-gnu-
	kinds=${BENCH_KINDS:-rpi5 gicv3}
}

# host_cpu: the CPU model of the machine this runs on
host_cpu() {
	cpu=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)
	[ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
	echo "$cpu"
}

# bench_in_host NAME KIND LOG: run tests/bench/NAME.sh for host KIND natively (arm64 with a
# writable /dev/kvm) or inside the emulated host, its whole output in LOG and its progress
# lines ("bench-NAME: ...") on stderr; LOG ends with a "# where:" line naming the host.
bench_in_host() {
	echo "bench-$1: $2 host" >&2
	if [ "$(uname -m)" = aarch64 ] && [ -w /dev/kvm ]; then
		MV=build/microvm MVDIR=. NETTOOL=build/guest/nettool HOSTKIND=$2 \
			sh "tests/bench/$1.sh" 2>&1 | tee "$3" | grep --line-buffered "^bench-$1:" >&2 || true
		echo "# where: native, $(host_cpu), Linux $(uname -r)" >>"$3"
	else
		# The progress lines arrive on the emulated host's console, with the rest.
		tests/boot/emulated-host.sh "$2" "bench-$1" 2>&1 | tee "$3" |
			grep --line-buffered "^bench-$1:" >&2 || true
		cpu=Cortex-A76
		[ "$2" != x86 ] || cpu="EPYC with SVM"
		echo "# where: emulated $2 host (QEMU TCG, $cpu, Linux" \
			"$(grep -o '^L1: [0-9][^,]*' "$3" | head -n 1 | cut -c5-)) on $(host_cpu)" >>"$3"
	fi
}

# bench_where LOG: the host a log's figures come from
bench_where() { sed -n 's/^# where: //p' "$1"; }

# bench_exit_rows LOG DECIMALS: one Markdown row per "MVEXITS CASE EXITS MMIO-EXITS UNITS
# TRAPPED" line of LOG (UNITS: what the device moved), ending with TRAPPED per unit
bench_exit_rows() {
	tr -d '\r' <"$1" | awk -v d="$2" '/^MVEXITS/ && NF == 6 {
		printf "| %s | %s | %s | %s | %s | %.*f |\n", $2, $3, $4, $5, $6, d, ($5 ? $6 / $5 : 0)
	}'
}
