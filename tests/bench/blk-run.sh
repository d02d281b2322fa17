#!/bin/sh
# make bench-blk: runs tests/bench/blk.sh in each emulated host (or natively on an arm64
# board with KVM) and writes build/bench/blk.md: guest figures next to the host's own on the
# same image file, and each as a ratio of the host figure. BENCH_REPORT_ONLY=1 rewrites the
# report from the logs of the last run.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=build/bench
mkdir -p "$out"
[ -n "${BENCH_REPORT_ONLY:-}" ] || make -s -j"$(nproc)" CROSS_COMPILE=aarch64-linux-gnu-
kinds=${BENCH_KINDS:-rpi5 gicv3}
for kind in $kinds; do
	echo "bench-blk: $kind host" >&2
	if [ -n "${BENCH_REPORT_ONLY:-}" ]; then
		where=$(sed -n 's/^# where: //p' "$out/blk-$kind.log")
	elif [ "$(uname -m)" = aarch64 ] && [ -w /dev/kvm ]; then
		MV=build/microvm MVDIR=. IOBENCH=build/guest/iobench HOSTKIND=$kind \
			sh tests/bench/blk.sh >"$out/blk-$kind.log" 2>&1
		where="native $(uname -r)"
		echo "# where: $where" >>"$out/blk-$kind.log"
	else
		tests/boot/emulated-host.sh "$kind" bench-blk >"$out/blk-$kind.log" 2>&1
		where="emulated host (QEMU TCG, $(grep -o '^L1: [^,]*' "$out/blk-$kind.log" | cut -c5-))"
		echo "# where: $where" >>"$out/blk-$kind.log"
	fi
	{
		echo "## $kind: $where"
		echo
		echo "| where | case | test | MB/s | IOPS | vs host |"
		echo "| --- | --- | --- | --- | --- | --- |"
		awk '/^MVBENCH (host|guest)/ {
			key = $4; mbs = $8; iops = $9
			if ($2 == "host") { hmb[key] = mbs; hio[key] = iops }
			ratio = (key == "randread") ? (hio[key] ? iops / hio[key] : 0) : (hmb[key] ? mbs / hmb[key] : 0)
			test = (key == "randread") ? "4 KiB random read" : "1 MiB sequential " key
			printf "| %s | %s | %s | %.1f | %.0f | %.2f |\n", $2, $3, test, mbs, iops, ratio
		}' "$out/blk-$kind.log"
		echo
		echo "Exits: all exits to microvm during the guest run (boot and console included), and the"
		echo "ones trapped on the benchmark disk's own transport registers, per request it served:"
		echo
		echo "| case | all exits | MMIO exits | disk requests | disk register exits | per request |"
		echo "| --- | --- | --- | --- | --- | --- |"
		awk '/^MVEXITS/ && NF == 6 {
			printf "| %s | %s | %s | %s | %s | %.2f |\n", $2, $3, $4, $5, $6, ($5 ? $6 / $5 : 0)
		}' "$out/blk-$kind.log"
		echo
	} >"$out/blk-$kind.md"
done
{
	echo "# virtio-blk benchmark ($(date -u +%Y-%m-%d), $(uname -m) host $(uname -r))"
	echo
	echo "Numbers from an emulated host measure the emulation as much as microvm: compare"
	echo "the ratios (guest / host on the same image file), not the absolute figures."
	echo
	for kind in $kinds; do cat "$out/blk-$kind.md"; done
} >"$out/blk.md"
cat "$out/blk.md"
