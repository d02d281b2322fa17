#!/bin/sh
# make bench-net: runs tests/bench/net.sh in each emulated host (or natively on an arm64 board
# with KVM, as root) and writes build/bench/net.md: TCP throughput guest <-> host per transport
# (median, min and max of BENCH_RUNS runs, default 3), next to the host's own loopback figure;
# net-KIND.csv (every run) and a plot of the medians (PNG, SVG).
# BENCH_REPORT_ONLY=1 rewrites the report from the logs of the last run.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=build/bench
. tests/bench/hosts.sh
bench_setup "$out"
for kind in $kinds; do
	log=$out/net-$kind.log
	[ -n "${BENCH_REPORT_ONLY:-}" ] || bench_in_host net "$kind" "$log"
	where=$(bench_where "$log")
	{
		echo "## $kind: $where"
		echo
		echo "| case | direction | runs | median MB/s | min | max | median vs loopback |"
		echo "| --- | --- | --- | --- | --- | --- | --- |"
		grep '^MVBENCH net ' "$log" | tr -d '\r' | sort -k3,3 -k4,4 -k6,6n | awk '
			function flush() {
				if (!n) return
				med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
				if (c == "host-loopback") lo = med
				printf "| %s | %s | %d | %.1f | %.1f | %.1f | %s |\n", c, d, n, med, v[1], v[n],
					(lo && c != "host-loopback") ? sprintf("%.2f", med / lo) : "-"
				n = 0
			}
			{ if ($3 != c || $4 != d) { flush(); c = $3; d = $4 } v[++n] = $6 }
			END { flush() }'
		echo
		echo "Exits to microvm over the whole guest run (boot, console and all transfers), and the"
		echo "ones trapped on the NIC's own transport registers, per frame it moved (received +"
		echo "sent; with TSO a frame carries up to 64 KiB):"
		echo
		echo "| case | all exits | MMIO exits | frames | NIC register exits | per frame |"
		echo "| --- | --- | --- | --- | --- | --- |"
		bench_exit_rows "$log" 3
		echo
		echo "Plot of the medians: [net-$kind.svg](net-$kind.svg) ([PNG](net-$kind.png))."
		echo
	} >"$out/net-$kind.md"
	{
		echo "host,case,direction,run,mb_s"
		grep '^MVBENCH net ' "$log" | tr -d '\r' | awk -v k="$kind" '{ print k "," $3 "," $4 "," $5 "," $6 }'
	} >"$out/net-$kind.csv"
	sed -n 's/^| \([a-z][a-z0-9-]*\) | \([a-z][a-z0-9-]*\) | [0-9]* | \([0-9.]*\) | .*/"\1\\n\2" \3/p' \
		"$out/net-$kind.md" >"$out/net-$kind.dat"
	[ -s "$out/net-$kind.dat" ] || continue
	tests/bench/plot-bars.sh "$out/net-$kind.dat" "$out/net-$kind" \
		"virtio-net: TCP median MB/s per transport and direction — $where" "MB/s"
done
{
	echo "# virtio-net benchmark ($(date -u +%Y-%m-%d), $(uname -m) host $(uname -r))"
	echo
	echo "TCP, one connection, between the (emulated) host and a 2-vCPU guest through a TAP:"
	echo "64 MiB per transfer with nettool (tests/bench/nettool.c), and iperf3 (Debian's) for"
	echo "IPERF_SECONDS each way (iperf3-*). Numbers from an emulated host measure the emulation"
	echo "as much as microvm: compare transports, not absolute figures."
	echo
	for kind in $kinds; do cat "$out/net-$kind.md"; done
} >"$out/net.md"
cat "$out/net.md"
