#!/bin/sh
# kvm-unit-tests' arm64 tests under microvm and, when a kvmtool binary is there, under kvmtool
# right after each (make kvm-unit-tests; runs inside an emulated host or natively on an arm64
# board). Reads DIR/unittests.cfg and DIR/*.flat; prints one line per test and monitor:
#   MVKUT TEST MONITOR PASS|FAIL|SKIP SECONDS REASON
# (the failing ones followed by their last lines, micro-bench by its figures).
# Environment: HOSTKIND (rpi5: GICv2, or gicv3), MV (microvm), MACHINES (its machines/),
# KUT_DIR (the tests), LKVM (kvmtool, optional), KUT_ONLY (comma list of tests),
# KUT_TIMEOUT (seconds per run).
set -u
kind=${HOSTKIND:-rpi5}
mv=${MV:-/microvm}
machines=${MACHINES:-/machines}
dir=${KUT_DIR:-/kut}
lkvm=${LKVM:-/peers/lkvm}
limit=${KUT_TIMEOUT:-120}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MAX_SMP=$(grep -c '^processor' /proc/cpuinfo)
case "$kind" in
rpi5) machine=$machines/rpi5.ini gic=gicv2 ;;
*) machine=$machines/virt-gicv3.ini gic=gicv3 ;;
esac
# The machine without its boot files: a test is the kernel, and takes no initrd.
grep -v '^initrd *=' "$machine" >"$tmp/machine.ini"
timer=$(sed -n '/^\[boot-timer\]/,/^\[/s/^base *= *//p' "$machine")

# applies NAME: why the test is not run on this host and these monitors (nothing: it is)
applies() {
	case "$1" in
	*migrat*) echo "needs migration, which only QEMU does" ;;
	selftest-* | psci | timer | pmu-* | cache | debug-* | fpu-context | micro-bench) ;;
	gicv2-*) [ "$gic" = gicv2 ] || echo "a GICv2 test, and this host's GIC is v3" ;;
	gicv3-* | its-*) [ "$gic" = gicv3 ] || echo "a GICv3 test, and this host's GIC is v2" ;;
	*) echo "not one a kvmtool-like monitor runs (QEMU devices, or MTE)" ;;
	esac
}

# result LOG: PASS, SKIP or FAIL from the test's "EXIT: STATUS=N" line, read as the suite's
# runner reads it: 1 passed, 77 skipped (what the test needs is not there), anything else
# failed; no line at all (a hang cut by the timeout, a monitor that stopped) failed too.
result() {
	st=$(tr -d '\r' <"$1" | sed -n 's/.*EXIT: STATUS=\([0-9]*\).*/\1/p' | head -n 1)
	if [ -z "$st" ]; then
		echo "FAIL no-exit-status"
	elif [ "$st" -eq 1 ]; then
		echo "PASS -"
	elif [ "$st" -eq 77 ]; then
		echo "SKIP test-skipped"
	else
		echo "FAIL status-$st"
	fi
}

# run TEST MONITOR COMMAND...: one run, bounded by KUT_TIMEOUT, and its MVKUT line
run() {
	t=$1 mon=$2
	shift 2
	start=$(cut -d' ' -f1 /proc/uptime)
	timeout "$limit" "$@" </dev/null >"$tmp/out" 2>&1
	end=$(cut -d' ' -f1 /proc/uptime)
	set -- $(result "$tmp/out")
	echo "MVKUT $t $mon $1 $(echo "$start $end" | awk '{ printf "%.1f", $2 - $1 }') $2"
	if [ "$1" = FAIL ]; then
		tr -d '\r' <"$tmp/out" | sed "s/^/MVKUT-LOG $t $mon: /" | tail -n 15
	elif [ "$t" = micro-bench ]; then
		tr -d '\r' <"$tmp/out" | sed -n "s/^/MVKUT-BENCH $mon: /p"
	fi
}

# both TEST FILE ARGS SMP MEM SETS KVMTOOL_PARAMS: the test under microvm, then under kvmtool
both() {
	# micro-bench times a user-space MMIO exit at mmio-addr: a device register each monitor
	# handles itself (microvm's boot timer; kvmtool's UART, where the suite's kvmtool build
	# prints).
	mvargs=$3 kvargs=$3
	if [ "$1" = micro-bench ]; then
		mvargs="$3 mmio-addr=$timer"
		kvargs="$3 mmio-addr=0x1000004"
	fi
	# shellcheck disable=SC2086
	run "$1" microvm "$mv" --config "$tmp/machine.ini" --set boot.kernel_format=raw \
		--kernel "$dir/$2" --set "boot.cmdline=$mvargs" --set "machine.vcpus=$4" \
		--set "memory.size=${5}M" $6
	[ -x "$lkvm" ] || return 0
	irqchip=$gic
	case " $7 " in *" --irqchip=gicv3-its "*) irqchip=gicv3-its ;; esac
	# As the suite's own runner starts it: no devices or command-line additions of its own
	# (--nodefaults), no NIC, fewer messages.
	# shellcheck disable=SC2046
	run "$1" kvmtool "$lkvm" run --nodefaults --network mode=none --loglevel=warning \
		--kernel "$dir/$2" --params "$kvargs" -c "$4" -m "$5" --irqchip="$irqchip" \
		--console serial $(case " $7 " in *" --pmu "*) echo --pmu ;; esac)
}

# The test list: one line per section, "name|file|smp|test_args|kvmtool_params".
awk '
function flush() {
	if (name != "")
		printf "%s|%s|%s|%s|%s\n", name, file, smp, args, kparams
	name = ""; file = ""; smp = "1"; args = ""; kparams = ""
}
/^\[.*\]$/ { flush(); name = substr($0, 2, length($0) - 2); next }
/^[a-z_]+ *=/ {
	key = $0; sub(/ *=.*/, "", key)
	val = $0; sub(/^[a-z_]+ *= */, "", val)
	if (val ~ /^".*"$/ || val ~ /^'\''.*'\''$/)
		val = substr(val, 2, length(val) - 2)
	if (key == "file") file = val
	else if (key == "smp") smp = val
	else if (key == "test_args") args = val
	else if (key == "kvmtool_params") kparams = val
}
END { flush() }' "$dir/unittests.cfg" >"$tmp/tests"

while IFS='|' read -r t file smp args kparams; do
	if [ -n "${KUT_ONLY:-}" ]; then
		case ",$KUT_ONLY," in *",$t,"*) ;; *) continue ;; esac
	fi
	why=$(applies "$t")
	if [ -n "$why" ]; then
		echo "MVKUT-NOTRUN $t: $why"
		continue
	fi
	smp=$(eval "echo \$(($smp))" 2>/dev/null || echo 1)
	# kvmtool's options in the file, mapped to the machine description.
	mem=256
	sets=""
	for p in $kparams; do
		case "$p" in
		--mem) ;;
		--pmu) sets="$sets --set machine.pmu=on" ;;
		--irqchip=*) ;; # the host kind decides the GIC
		[0-9]*) mem=$p ;;
		esac
	done
	both "$t" "$file" "$args" "$smp" "$mem" "$sets" "$kparams"
	# micro-bench's figures: more runs, the monitors taking turns.
	n=1
	while [ "$t" = micro-bench ] && [ "$n" -lt "${KUT_BENCH_RUNS:-3}" ]; do
		n=$((n + 1))
		both "$t" "$file" "$args" "$smp" "$mem" "$sets" "$kparams"
	done
done <"$tmp/tests"
echo "MVKUT-DONE"
