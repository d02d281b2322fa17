#!/bin/sh
# The restore step natively, on a host whose /dev/kvm creates VMs but may not run guests at
# speed (the x86-64 machines here: see docs/benchmarks.md): a restore's work is the
# monitor's (read the state, build the VM, set the state, start the vCPUs), not the guest's,
# so it is measured here on real hardware. For each memory size (RESTORE_MEM_MIB) a VM is
# started and, as soon as its vCPUs run, paused and saved (the guest is wherever it got to:
# the state has the same parts whatever it is). Then RESTORE_ITER restores, each stopped once
# its first KVM_RUN is logged. Prints "MVCSV native,..." rows: the restore's phases (ms from
# process start, --boot-report).
# Usage: restore-native.sh MICROVM MACHINE.ini
MV=$1
machine=$2
ITER=${RESTORE_ITER:-5}
MEMS=${RESTORE_MEM_MIB:-256 2048}
TMP=${TMPDIR:-/tmp}/mvrestore-native.$$
phases="state_read vm_built state_restored first_kvm_run"
mkdir -p "$TMP"

value() { sed -n "s/^ *\"$2\": \\([0-9.-]*\\),*$/\\1/p" "$1" | head -n 1; }
# wait_in FILE PATTERN SECONDS
wait_in() {
	n=0
	until grep -q -- "$2" "$1" 2>/dev/null || [ $n -ge $(($3 * 10)) ]; do
		n=$((n + 1))
		sleep 0.1
	done
	grep -q -- "$2" "$1" 2>/dev/null
}

echo "MVCSV native,memory_mib,iteration,$(echo $phases | tr ' ' ','),exit_status"
for m in $MEMS; do
	echo "bench-restore: native, $m MiB: the VM to save" >&2
	"$MV" -v --config "$machine" --set memory.size="${m}M" --api-sock "$TMP/s.sock" \
		</dev/null >"$TMP/save.out" 2>&1 &
	pid=$!
	if ! wait_in "$TMP/save.out" "first KVM_RUN" 60 || ! kill -0 "$pid" 2>/dev/null; then
		echo "bench-restore: native, $m MiB: the VM did not run:" >&2
		tail -n 5 "$TMP/save.out" >&2
	fi
	"$MV" ctl "$TMP/s.sock" pause >/dev/null
	"$MV" ctl "$TMP/s.sock" snapshot "$TMP/vm.state" "$TMP/vm.mem" >&2
	"$MV" ctl "$TMP/s.sock" stop >/dev/null 2>&1 || kill "$pid"
	wait "$pid"
	for i in $(seq "$ITER"); do
		rm -f "$TMP/r.json"
		"$MV" -v --restore "$TMP/vm.state" --api-sock "$TMP/r.sock" \
			--boot-report "$TMP/r.json" </dev/null >"$TMP/r.out" 2>&1 &
		pid=$!
		wait_in "$TMP/r.out" "first KVM_RUN" 60
		"$MV" ctl "$TMP/r.sock" stop >/dev/null 2>&1 || kill "$pid"
		wait "$pid"
		st=$?
		[ "$st" = 4 ] || tail -n 5 "$TMP/r.out" >&2
		row="MVCSV native,$m,$i"
		for p in $phases; do row="$row,$(value "$TMP/r.json" "$p")"; done
		echo "$row,$st"
	done
	rm -f "$TMP/vm.state" "$TMP/vm.mem"
done
rm -rf "$TMP"
