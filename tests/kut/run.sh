#!/bin/sh
# make kvm-unit-tests KUT_SRC=... [KVMTOOL_SRC=...]: builds kvm-unit-tests' arm64 tests (and
# kvmtool) with tests/bench/build-peers.sh, runs tests/kut/kut.sh in the emulated RPi5 (GICv2)
# and GICv3 hosts (KUT_KINDS; natively on an arm64 board with KVM, on its own GIC), and writes
# build/kut/report.md: each test's result per monitor and host. Exits 1 when microvm fails a
# test that kvmtool passes (or, without kvmtool, any test), 2 when the suite cannot be built.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=${KUT_OUT:-build/kut}
mkdir -p "$out"
# Natively the board's own GIC decides the machine (GIC-400: rpi5); emulated, both hosts.
native=0
[ "$(uname -m)" = aarch64 ] && [ -w /dev/kvm ] && native=1
if [ -n "${KUT_KINDS:-}" ]; then
	kinds=$KUT_KINDS
elif [ $native = 1 ]; then
	kinds=rpi5
	grep -q GICv3 /proc/interrupts 2>/dev/null && kinds=gicv3
else
	kinds="rpi5 gicv3"
fi
if [ -z "${KUT_SRC:-}" ]; then
	echo "kvm-unit-tests: set KUT_SRC to a kvm-unit-tests source tree or .tar.gz" >&2
	exit 2
fi
tests/bench/build-peers.sh "$out/bin" kvm-unit-tests lkvm || exit 2
[ -d "$out/bin/kvm-unit-tests" ] || exit 2
make -s -j"$(nproc)" CROSS_COMPILE=aarch64-linux-gnu-

for kind in $kinds; do
	log=$out/kut-$kind.log
	echo "kvm-unit-tests: $kind host" >&2
	if [ $native = 1 ]; then
		HOSTKIND=$kind MV=build/microvm MACHINES=machines KUT_DIR=$out/bin/kvm-unit-tests \
			LKVM=$out/bin/lkvm sh tests/kut/kut.sh >"$log" 2>&1
		echo "# where: native, $(uname -m), Linux $(uname -r)" >>"$log"
	else
		# The serial console's line ends lose their carriage returns here, once.
		KUT_DIR=$out/bin/kvm-unit-tests PEERS_DIR=$out/bin \
			tests/boot/emulated-host.sh "$kind" kut 2>&1 | tr -d '\r' >"$log" || true
		echo "# where: emulated $kind host (QEMU TCG, Cortex-A76)" >>"$log"
	fi
	grep -q '^MVKUT-DONE' "$log" || echo "kvm-unit-tests: $kind: the run did not finish" \
		"(see $log)" >&2
done

# The table: a row per test, a column per host and monitor.
report=$out/report.md
for kind in $kinds; do
	awk -v k="$kind" '$1 == "MVKUT" { print k, $2, $3, $4 }' "$out/kut-$kind.log"
done | awk -v kinds="$kinds" '
{ r[$2, $1, $3] = $4; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } mons[$3] = 1 }
END {
	nk = split(kinds, K, " ")
	hdr = "| test |"; sep = "| --- |"
	nm = split("microvm kvmtool", M, " ")
	for (i = 1; i <= nk; i++)
		for (j = 1; j <= nm; j++) {
			if (!(M[j] in mons))
				continue
			hdr = hdr " " K[i] " " M[j] " |"
			sep = sep " --- |"
			col[++nc] = K[i] SUBSEP M[j]
		}
	print hdr; print sep
	for (j = 1; j <= n; j++) {
		line = "| " order[j] " |"
		for (c = 1; c <= nc; c++) {
			split(col[c], kv, SUBSEP)
			v = r[order[j], kv[1], kv[2]]
			line = line " " (v == "" ? "-" : v) " |"
		}
		print line
	}
}' >"$report.rows"
{
	echo "# kvm-unit-tests under microvm$([ -x "$out/bin/lkvm" ] && echo " and kvmtool")"
	echo
	for kind in $kinds; do
		echo "- $kind: $(sed -n 's/^# where: //p' "$out/kut-$kind.log")"
	done
	echo
	cat "$report.rows"
	echo
	for kind in $kinds; do
		grep -q '^MVKUT-BENCH' "$out/kut-$kind.log" || continue
		echo "micro-bench in the $kind host: average ns per operation, median of" \
			"${KUT_BENCH_RUNS:-3} runs each (min-max), the monitors taking turns:"
		echo
		echo "| operation | microvm | kvmtool |"
		echo "| --- | --- | --- |"
		awk '
			$1 == "MVKUT-BENCH" && NF == 5 && $4 ~ /^[0-9.]+$/ && $5 ~ /^[0-9.]+$/ {
				mon = $2; sub(/:$/, "", mon)
				k = $3 SUBSEP mon
				v[k, ++n[k]] = $5
				if (!($3 in seen)) { seen[$3] = 1; order[++no] = $3 }
			}
			function med(k,   i, j, t, m) {
				if (!n[k]) return "-"
				for (i = 2; i <= n[k]; i++)
					for (j = i; j > 1 && v[k, j - 1] > v[k, j]; j--) {
						t = v[k, j]; v[k, j] = v[k, j - 1]; v[k, j - 1] = t
					}
				m = n[k] % 2 ? v[k, (n[k] + 1) / 2] : (v[k, n[k] / 2] + v[k, n[k] / 2 + 1]) / 2
				return sprintf("%.0f (%.0f-%.0f)", m, v[k, 1], v[k, n[k]])
			}
			END {
				for (i = 1; i <= no; i++)
					printf "| %s | %s | %s |\n", order[i], med(order[i] SUBSEP "microvm"),
						med(order[i] SUBSEP "kvmtool")
			}' "$out/kut-$kind.log"
		echo
	done
	echo "Not run, and why:"
	echo
	for kind in $kinds; do
		sed -n "s/^MVKUT-NOTRUN /- $kind: /p" "$out/kut-$kind.log"
	done
} >"$report"
rm -f "$report.rows"
cat "$report"

# microvm fails where kvmtool passes (or fails at all, without kvmtool): non-zero.
bad=0
for kind in $kinds; do
	awk '$1 == "MVKUT" { r[$2, $3] = $4; t[$2] = 1 }
		END {
			for (x in t)
				if (r[x, "microvm"] != "PASS" && r[x, "microvm"] != "SKIP" &&
				    (!((x, "kvmtool") in r) || r[x, "kvmtool"] == "PASS"))
					print x
		}' "$out/kut-$kind.log" >"$out/regressions-$kind"
	if [ -s "$out/regressions-$kind" ] || ! grep -q '^MVKUT-DONE' "$out/kut-$kind.log"; then
		echo "kvm-unit-tests: $kind: microvm fails: $(tr '\n' ' ' <"$out/regressions-$kind")" >&2
		bad=1
	fi
done
# microvm's counts, for make check: a skip is what the test found missing, not a failure.
for kind in $kinds; do cat "$out/kut-$kind.log"; done | awk '$1 == "MVKUT" && $3 == "microvm" {
	if ($4 == "FAIL") f++; else p++
} END { printf "kvm-unit-tests: %d passed, %d failed\n", p, f }'
exit $bad
