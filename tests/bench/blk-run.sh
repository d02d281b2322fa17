#!/bin/sh
# make bench-blk: runs tests/bench/blk.sh in each emulated host (or natively on an arm64
# board with KVM) and writes build/bench/: blk.md (guest fio figures next to the host's own
# on the same image file, each as a ratio of the host figure), blk-KIND.csv and a plot per
# host (PNG, SVG). BENCH_REPORT_ONLY=1 rewrites the report from the logs of the last run.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=build/bench
. tests/bench/hosts.sh
bench_setup "$out"
for kind in $kinds; do
	[ -n "${BENCH_REPORT_ONLY:-}" ] || bench_in_host blk "$kind" "$out/blk-$kind.log"
	where=$(bench_where "$out/blk-$kind.log")
	{
		echo "## $kind: $where"
		echo
		echo "| where | case | job | MB/s | IOPS | vs host |"
		echo "| --- | --- | --- | --- | --- | --- |"
		tr -d '\r' <"$out/blk-$kind.log" | awk -v kind="$kind" -v csv="$out/blk-$kind.csv" '
			BEGIN { print "host,where,case,job,mb_s,iops,vs_host" >csv }
			/^MVBENCH (host|guest) / && NF == 6 {
				job = $4; mbs = $5; iops = $6
				if ($2 == "host") { hmb[job] = mbs; hio[job] = iops }
				# random jobs compare IOPS, sequential ones bandwidth
				r = (job ~ /^rand/) ? (hio[job] ? iops / hio[job] : 0) : (hmb[job] ? mbs / hmb[job] : 0)
				printf "| %s | %s | %s | %.1f | %.0f | %.2f |\n", $2, $3, job, mbs, iops, r
				printf "%s,%s,%s,%s,%.1f,%.0f,%.3f\n", kind, $2, $3, job, mbs, iops, r >csv
			}'
		echo
		echo "Exits: all exits to microvm during the guest run (boot and console included), and the"
		echo "ones trapped on the benchmark disk's own transport registers, per request it served:"
		echo
		echo "| case | all exits | MMIO exits | disk requests | disk register exits | per request |"
		echo "| --- | --- | --- | --- | --- | --- |"
		bench_exit_rows "$out/blk-$kind.log" 2
		echo
		echo "Plot: [blk-$kind.svg](blk-$kind.svg) ([PNG](blk-$kind.png))."
		echo
	} >"$out/blk-$kind.md"
	# Each guest case as a fraction of the host's own figure, per job.
	awk -F, 'NR > 1 && $2 == "guest" { printf "\"%s\\n%s\" %s\n", $3, $4, $7 }' \
		"$out/blk-$kind.csv" >"$out/blk-$kind.dat"
	[ -s "$out/blk-$kind.dat" ] || { echo "bench-blk: no guest results from $kind" >&2; continue; }
	tests/bench/plot-bars.sh "$out/blk-$kind.dat" "$out/blk-$kind" \
		"virtio-blk: guest fio as a fraction of the same job on the host file — $where" \
		"guest / host"
done
{
	echo "# virtio-blk benchmark ($(date -u +%Y-%m-%d), $(uname -m) host $(uname -r))"
	echo
	echo "fio (Debian's arm64 build) with O_DIRECT and libaio: the same job on the image file in"
	echo "the host, then in the guest on that file as /dev/vdb. Numbers from an emulated host"
	echo "measure the emulation as much as microvm: compare the ratios (guest / host), not the"
	echo "absolute figures. CSV next to this file (blk-KIND.csv)."
	echo
	for kind in $kinds; do cat "$out/blk-$kind.md"; done
} >"$out/blk.md"
cat "$out/blk.md"
