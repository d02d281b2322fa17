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
# lines ("bench-NAME: ...") on stderr; LOG ends with a "# where:" line naming the host and a
# "# load:" line saying how busy the machine was with other work (load_note).
bench_in_host() {
	echo "bench-$1: $2 host" >&2
	load_begin "$3"
	if [ "$(uname -m)" = aarch64 ] && [ -w /dev/kvm ]; then
		MV=build/microvm MVDIR=. NETTOOL=build/guest/nettool HOSTKIND=$2 \
			bench_self "$3.self" sh "tests/bench/$1.sh" 2>&1 | tee "$3" |
			grep --line-buffered "^bench-$1:" >&2 || true
		echo "# where: native, $(host_cpu), Linux $(uname -r)" >>"$3"
	else
		# The progress lines arrive on the emulated host's console, with the rest.
		bench_self "$3.self" tests/boot/emulated-host.sh "$2" "bench-$1" 2>&1 | tee "$3" |
			grep --line-buffered "^bench-$1:" >&2 || true
		cpu=Cortex-A76
		[ "$2" != x86 ] || cpu="EPYC with SVM"
		echo "# where: emulated $2 host (QEMU TCG, $cpu, Linux" \
			"$(grep -o '^L1: [0-9][^,]*' "$3" | head -n 1 | cut -c5-)) on $(host_cpu)" >>"$3"
	fi
	load_end "$3" >>"$3"
}

# bench_self FILE COMMAND...: run COMMAND; then write to FILE the CPU time (clock ticks) it and
# everything it started used, as the kernel counted it for the shell that waited for it
bench_self() {
	sh -c 'f=$1; shift; "$@"; st=$?; read -r s </proc/$$/stat; set -- ${s##*) }
		echo $((${14} + ${15})) >"$f"; exit $st' sh "$@"
}

# cpu_ticks: the machine's busy and total CPU time so far, in clock ticks (/proc/stat)
cpu_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

# proc_ticks: "PID PPID TICKS NAME" of every process now (TICKS: user + system time)
proc_ticks() {
	for f in /proc/[0-9]*/stat; do
		read -r s <"$f" 2>/dev/null || continue
		n=${s#*(} n=${n%%)*}
		set -- ${s##*) }
		echo "${s%% *} $2 $((${12} + ${13})) $n"
	done 2>/dev/null
}

# others_since OLD NEW ROOT: "TICKS NAME" for each process in NEW outside ROOT's process tree,
# the CPU time it used since OLD (all of it when it is new)
others_since() {
	awk -v root="$3" 'NR == FNR { t[$1] = $3; next }
		{ pid[FNR] = $1; pp[$1] = $2; tk[FNR] = $3; nm[FNR] = $4; n = FNR }
		END {
			for (i = 1; i <= n; i++) {
				p = pid[i]; ours = 0
				for (k = 0; k < 64 && p > 1; k++) { if (p == root) { ours = 1; break } p = pp[p] }
				d = tk[i] - (pid[i] in t ? t[pid[i]] : 0)
				if (!ours && d > 0) print d, nm[i]
			}
		}' "$1" "$2"
}

# load_begin LOG: note the machine's CPU time and load average, and every 5 s until load_end
# sample the load average and what each process outside this benchmark used meanwhile
load_begin() {
	cpu_ticks >"$1.cpu0"
	cut -d' ' -f1 /proc/loadavg >"$1.la"
	: >"$1.others"
	(
		proc_ticks >"$1.p0"
		while sleep 5; do
			cut -d' ' -f1 /proc/loadavg >>"$1.la"
			proc_ticks >"$1.p1"
			others_since "$1.p0" "$1.p1" $$ >>"$1.others"
			mv "$1.p1" "$1.p0"
		done
	) &
	load_sampler=$!
}

# load_end LOG: the "# load:" line of a run: the 1-minute load average (start, highest, end)
# and the share of the machine's CPU time that processes other than the benchmark used
# (the busy time /proc/stat counted less what the benchmark's process tree used), with the
# three (by name) that used most in the 5-s samples; "WARNING" when that share was over 10%.
load_end() {
	kill "$load_sampler" 2>/dev/null || true
	wait "$load_sampler" 2>/dev/null || true # (its status is the signal's: not an error)
	cut -d' ' -f1 /proc/loadavg >>"$1.la"
	cpu_ticks >"$1.cpu1"
	top=$(awk '{ s[$2] += $1 } END { for (n in s) print s[n], n }' "$1.others" | sort -rn | head -n 3 |
		awk -v hz="$(getconf CLK_TCK)" '{ printf "%s%s %.0f s", (NR > 1 ? ", " : ""), $2, $1 / hz }')
	read -r b0 t0 <"$1.cpu0"
	read -r b1 t1 <"$1.cpu1"
	self=$(cat "$1.self" 2>/dev/null || echo 0)
	awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) -v self="$self" -v n="$(nproc)" -v top="$top" '
		NR == 1 { first = $1 } { last = $1; if ($1 > max) max = $1 }
		END {
			other = b - self; if (other < 0) other = 0
			share = t ? 100 * other / t : 0
			printf "# load: 1-minute load average %s at the start, %s at most, %s at the end (%d CPUs);", first, max, last, n
			printf " other processes used %.0f%% of the CPU time (the benchmark %.0f%%)", share, t ? 100 * self / t : 0
			if (share > 10) printf "; WARNING: another heavy process shared the machine (%s): the timed figures are not reliable, the counts per request are", top == "" ? "short-lived ones" : "most: " top
			printf "\n"
		}' "$1.la"
	rm -f "$1.cpu0" "$1.cpu1" "$1.p0" "$1.p1" "$1.others" "$1.la" "$1.self"
}

# bench_where LOG: the host a log's figures come from, and how busy the machine was
bench_where() {
	w=$(sed -n 's/^# where: //p' "$1" | head -n 1)
	l=$(sed -n 's/^# load: //p' "$1" | head -n 1)
	echo "$w${l:+; $l}"
}

# bench_exit_rows LOG DECIMALS: one Markdown row per "MVEXITS CASE EXITS MMIO-EXITS UNITS
# TRAPPED" line of LOG (UNITS: what the device moved), ending with TRAPPED per unit
bench_exit_rows() {
	tr -d '\r' <"$1" | awk -v d="$2" '/^MVEXITS/ && NF == 6 {
		printf "| %s | %s | %s | %s | %s | %.*f |\n", $2, $3, $4, $5, $6, d, ($5 ? $6 / $5 : 0)
	}'
}
