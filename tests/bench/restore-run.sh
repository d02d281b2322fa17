#!/bin/sh
# make bench-restore: runs tests/bench/restore.sh in each emulated host (or natively on an
# arm64 board with KVM) and writes build/bench/restore/restore.md: cold boot to user space
# against restore to user space (median of RESTORE_ITER each, interleaved), per memory size,
# the restore's phases, and the resident memory of RESTORE_CLONES clones against one cold VM.
# BENCH_REPORT_ONLY=1 rewrites the report from the logs of the last run.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=build/bench/restore
. tests/bench/hosts.sh
bench_setup "$out"
# (the x86 host runs the static x86-64 microvm and the x86-64 guest)
case " $kinds " in
*" x86 "*) [ -n "${BENCH_REPORT_ONLY:-}" ] || make -s -j"$(nproc)" STATIC=1 build/x86_64/microvm guest-x86_64 ;;
esac
md=$out/restore.md
{
	echo "# Snapshot restore against cold boot"
	echo
	echo "make bench-restore; every figure a median (ms from process start) of RESTORE_ITER runs,"
	echo "cold boots and restores taking turns."
} >"$md"
for kind in $kinds; do
	log=$out/restore-$kind.log
	[ -n "${BENCH_REPORT_ONLY:-}" ] || bench_in_host restore "$kind" "$log"
	tr -d '\r' <"$log" | sed -n 's/^MVCSV restore,//p' >"$out/restore-$kind.csv"
	tr -d '\r' <"$log" | sed -n 's/^MVCSV mem,//p' >"$out/mem-$kind.csv"
	{
		echo
		echo "## $kind host: $(bench_where "$log")"
		echo
		echo "| memory | runs | cold: user space | restore: state read | VM built | state restored | first KVM_RUN | user space | restore / cold |"
		echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
		awk -F, 'NR > 1 && (($4 == "cold" && $NF == 0) || ($4 == "restore" && $NF == 4)) { k = $2 SUBSEP $4
			v[k, "init"] = v[k, "init"] " " $10
			if ($4 == "restore") for (i = 5; i <= 9; i++) v[k, i] = v[k, i] " " $i
			n[k]++; mems[$2] = 1 }
		function med(s,   a, m, i, j, t) {
			m = split(s, a, " "); if (!m) return ""
			for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
			return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
		END { for (m in mems) { c = m SUBSEP "cold"; r = m SUBSEP "restore"
			ci = med(v[c, "init"]); ri = med(v[r, "init"])
			printf "| %s MiB | %d + %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.3f |\n", m, n[c], n[r], ci,
				med(v[r, 5]), med(v[r, 6]), med(v[r, 7]), med(v[r, 9]), ri, ci ? ri / ci : 0 } }' \
			"$out/restore-$kind.csv" | sort -n -t'|' -k2
		echo
		echo "| memory | what | processes | RSS (KiB) | PSS (KiB) | PSS / one cold VM's |"
		echo "| --- | --- | --- | --- | --- | --- |"
		awk -F, 'NR > 1 { if ($3 == "cold") cold = $6
			printf "| %s MiB | %s | %s | %s | %s | %.2f |\n", $2, $3, $4, $5, $6, cold ? $6 / cold : 0 }' \
			"$out/mem-$kind.csv"
		echo
		echo "PSS counts a page shared by several processes (the memory file's pages in the page"
		echo "cache, the monitor's text) once in all, split between them; RSS counts it in each."
	} >>"$md"
done
# The restore step natively where this host's /dev/kvm takes x86-64 VMs (it need not run
# them at speed: the step is the monitor's work).
if [ "$(uname -m)" = x86_64 ] && [ -w /dev/kvm ] && [ "${RESTORE_NATIVE:-1}" = 1 ]; then
	log=$out/restore-native.log
	if [ -z "${BENCH_REPORT_ONLY:-}" ]; then
		make -s -j"$(nproc)" STATIC=1 build/x86_64/microvm
		MVDIR=. sh tests/bench/restore.sh native build/x86_64/microvm machines/x86_64.ini >"$log"
		echo "# where: native, $(host_cpu), Linux $(uname -r)" >>"$log"
	fi
	sed -n 's/^MVCSV native,//p' "$log" >"$out/restore-native.csv"
	{
		echo
		echo "## The restore step natively: $(bench_where "$log")"
		echo
		echo "An x86-64 VM saved as soon as it ran, restored RESTORE_ITER times (ms from process"
		echo "start, median; the guest is not run at speed here, the step is the monitor's work)."
		echo
		echo "| memory | runs | state read | VM built | state restored | first KVM_RUN |"
		echo "| --- | --- | --- | --- | --- | --- |"
		awk -F, 'NR > 1 && $NF == 4 { for (i = 3; i <= 6; i++) v[$1, i] = v[$1, i] " " $i; n[$1]++ }
		function med(s,   a, m, i, j, t) {
			m = split(s, a, " "); if (!m) return ""
			for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
			return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
		END { for (m in n) printf "| %s MiB | %d | %.2f | %.2f | %.2f | %.2f |\n", m, n[m],
			med(v[m, 3]), med(v[m, 4]), med(v[m, 5]), med(v[m, 6]) }' \
			"$out/restore-native.csv" | sort -n -t'|' -k2
	} >>"$md"
fi
cat "$md"
