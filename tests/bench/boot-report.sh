#!/bin/sh
# Summarises boot benchmark CSV files (tests/bench/boot.sh) into DIR/boot.md and plots
# (gnuplot, PNG and SVG) of the time to the guest's init and of the monitor's own share.
# Usage: boot-report.sh DIR "WHERE" FILE.csv...   (WHERE names the host the numbers are from)
set -eu
dir=$1
where=$2
shift 2
mkdir -p "$dir"
csv=$dir/boot.csv
# The header from the first file that has one: a host that produced no rows leaves its file
# empty, and the others still make a report.
: >"$csv"
for f in "$@"; do
	[ -s "$f" ] || continue
	[ -s "$csv" ] || head -n 1 "$f" >"$csv"
	tail -n +2 "$f" >>"$csv"
done
[ -s "$csv" ] || { echo "boot-report: no rows in $*" >&2; exit 1; }
# Derived: sandbox_ms, from the images in RAM to the sandbox in place (vCPU threads started,
# limits, privilege drop, every thread's filter).
awk -F, -v OFS=, 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "images_loaded") a = i
		if ($i == "sandboxed") b = i }; print $0, "sandbox_ms"; next }
	{ print $0, (a && b && $a != "" && $b != "") ? $b - $a : "" }' "$csv" >"$csv.tmp"
mv "$csv.tmp" "$csv"

# stats COLUMN: "case,n,min,median,p95,max" per case (host kernel transport vcpus memory,
# and "seccomp-off" for boots without the sandbox's filters)
stats() {
	awk -F, -v want="$1" 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == want) col = i
			if ($i == "seccomp") sc = i }; next }
		col && $col != "" { key = $1 " " $2 " " $3 " " $4 "vcpu " $5 "MiB"
			if (sc && $sc != "on" && $sc != "") key = key " seccomp-" $sc
			v[key] = v[key] " " $col }
		END { for (k in v) print k "|" v[k] }' "$csv" | sort | while IFS='|' read -r key vals; do
		echo "$vals" | tr ' ' '\n' | grep . | sort -n | awk -v key="$key" '
			{ x[NR] = $1 }
			END {
				if (!NR) exit
				med = (NR % 2) ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2
				p = int(0.95 * NR + 0.999999); if (p < 1) p = 1; if (p > NR) p = NR
				printf "%s,%d,%s,%s,%s,%s\n", key, NR, x[1], med, x[p], x[NR]
			}'
	done
}

{
	echo "# Boot benchmark"
	echo
	echo "Host: $where."
	echo "Numbers from an emulated host (QEMU TCG) measure the emulation as much as microvm;"
	echo "they are not Raspberry Pi 5 figures. Times in ms from microvm's process start."
	echo
	for col in first_kvm_run sandbox_ms first_console_output init_reached exit monitor_ms \
		monitor_rss_kib; do
		case $col in
		first_kvm_run) title="set-up: first KVM_RUN (ms)" ;;
		sandbox_ms) title="images loaded to sandboxed: vCPU threads, limits, filters (ms)" ;;
		first_console_output) title="first console output (ms)" ;;
		init_reached) title="guest user space started: boot timer (ms)" ;;
		exit) title="process exit after poweroff (ms)" ;;
		monitor_ms) title="monitor's own share: set-up + time in exits (ms)" ;;
		monitor_rss_kib) title="monitor RSS minus guest RAM (KiB)" ;;
		esac
		echo "## $title"
		echo
		echo "| case | runs | min | median | p95 | max |"
		echo "| --- | --- | --- | --- | --- | --- |"
		stats "$col" | awk -F, '{ printf "| %s | %s | %.1f | %.1f | %.1f | %.1f |\n", $1, $2, $3, $4, $5, $6 }'
		echo
	done
	echo "Plots: [init](boot-init.svg) ([PNG](boot-init.png)),"
	echo "[monitor share](boot-monitor.svg) ([PNG](boot-monitor.png))."
} >"$dir/boot.md"

plot() { # COLUMN NAME YLABEL
	stats "$1" | awk -F, '{ split($1, w, " ")
		printf "\"%s\\n%s\\n%s %s\" %s %s %s %s\n", w[2], w[3], w[4], w[5], $4, $3, $6, $5 }' \
		>"$dir/$2.dat"
	"$(dirname "$0")/plot-bars.sh" "$dir/$2.dat" "$dir/$2" "$3 — $where" "$3"
}
plot init_reached boot-init "guest user space started (ms)"
plot monitor_ms boot-monitor "monitor share (ms)"
echo "boot-report: $dir/boot.md, $dir/boot-init.png/.svg, $dir/boot-monitor.png/.svg" >&2
