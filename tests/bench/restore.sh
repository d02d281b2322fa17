#!/bin/sh
# Restore benchmark, run where microvm runs (inside an emulated host: rpi5, gicv3 or x86, or
# natively on an arm64 board with KVM). For each memory size (RESTORE_MEM_MIB, default "256 2048"): a VM boots,
# its guest starts a loop that writes the boot timer's register as fast as it can (the mark
# "user space runs"), the VM is paused, saved and stopped. Then RESTORE_ITER times, in turn: a
# cold boot of the same machine to user space (its init powers off there: microvm.poweroff)
# and a restore of the snapshot until the loop's first write after it; both with
# --boot-report. Then RESTORE_CLONES (default 8) clones of a snapshot of the first size run
# at once, each hashing 4 MiB it writes to its tmpfs, beside one cold-booted VM doing the same: their
# resident memory (RSS, and PSS: shared pages split between the processes that map them).
# Prints "MVCSV restore,..." rows (one per boot or restore), "MVCSV mem,..." rows, progress
# on stderr. "restore.sh native MICROVM MACHINE" measures the restore step alone (below).
MV=${MV:-/microvm}
MVDIR=${MVDIR:-/}
HOSTKIND=${HOSTKIND:-rpi5}
ITER=${RESTORE_ITER:-5}
MEMS=${RESTORE_MEM_MIB:-256 2048}
CLONES=${RESTORE_CLONES:-8}
TMP=${TMPDIR:-/tmp}/mvrestore.$$
mkdir -p "$TMP"
machine=$MVDIR/machines/rpi5.ini
[ "$HOSTKIND" = gicv3 ] && machine=$MVDIR/machines/virt-gicv3.ini
[ "$HOSTKIND" = x86 ] && machine=$MVDIR/machines/x86_64.ini
timer=$(sed -n '/^\[boot-timer\]/,/^\[/s/^base *= *//p' "$machine")
phases="state_read vm_built state_restored sandboxed first_kvm_run init_reached"
WORK='dd if=/dev/urandom of=/tmp/w bs=1M count=4 2>/dev/null; sha256sum /tmp/w >/dev/null; echo WORK-DONE'

# value FILE KEY: a number (empty for null) from a boot report
value() { sed -n "s/^ *\"$2\": \\([0-9.-]*\\),*$/\\1/p" "$1" | head -n 1; }
# wait_in FILE PATTERN SECONDS: until PATTERN is in FILE
wait_in() {
	n=0
	until grep -q -- "$2" "$1" 2>/dev/null || [ $n -ge $(($3 * 10)) ]; do
		n=$((n + 1))
		sleep 0.1
	done
	grep -q -- "$2" "$1" 2>/dev/null
}
# kb PID FIELD: a process's Rss or Pss (KiB) from smaps_rollup
kb() { sed -n "s/^$2: *\\([0-9]*\\) kB/\\1/p" "/proc/$1/smaps_rollup" 2>/dev/null; }

# restore.sh native MICROVM MACHINE.ini: the restore step natively, on a host whose /dev/kvm
# creates VMs but may not run guests at speed (the x86-64 machines here): a restore's work is
# the monitor's (read the state, build the VM, set it, start the vCPUs), not the guest's. For
# each memory size a VM is started and, once its vCPUs run, saved (the guest is wherever it
# got to: the state has the same parts); then RESTORE_ITER restores, each stopped once its
# first KVM_RUN is logged. Prints "MVCSV native,..." rows: the phases (ms from process start).
if [ "${1:-}" = native ]; then
	MV=$2 machine=$3
	phases="state_read vm_built state_restored first_kvm_run"
	echo "MVCSV native,memory_mib,iteration,$(echo $phases | tr ' ' ','),exit_status"
	for m in $MEMS; do
		echo "bench-restore: native, $m MiB: the VM to save" >&2
		rm -f "$TMP/save.out" # (a wait must not find the last run's line)
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
			rm -f "$TMP/r.json" "$TMP/r.out"
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
	exit 0
fi

# boot_vm NAME MEM ARGS...: a VM with a console FIFO (fd 3); sets $pid, $out
boot_vm() {
	name=$1 mem=$2
	shift 2
	out=$TMP/$name.out
	rm -f "$TMP/$name.in"
	mkfifo "$TMP/$name.in"
	"$MV" -v --config "$machine" --set machine.vcpus=2 --set memory.size="${mem}M" "$@" \
		<"$TMP/$name.in" >"$out" 2>&1 &
	pid=$!
	exec 3>"$TMP/$name.in"
}
say() { (trap '' PIPE; echo "$1" >&3) 2>/dev/null; }
# stop_vm: close the console, stop the VM through its socket, wait for it
stop_vm() {
	"$MV" ctl "$1" stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null
	exec 3>&-
	wait "$pid"
}

echo "MVCSV restore,host,memory_mib,iteration,kind,$(echo $phases | tr ' ' ','),exit_status"
for m in $MEMS; do
	echo "bench-restore: $m MiB: the VM to save" >&2
	boot_vm save-$m "$m" --api-sock "$TMP/s.sock"
	wait_in "$out" "microvm:/#" 300
	say "while :; do devmem $timer 8 123; done &"
	sleep 2
	"$MV" ctl "$TMP/s.sock" pause >/dev/null
	"$MV" ctl "$TMP/s.sock" snapshot "$TMP/vm$m.state" "$TMP/vm$m.mem" >&2
	stop_vm "$TMP/s.sock"
	echo "bench-restore: $m MiB: memory file $(du -k "$TMP/vm$m.mem" | cut -f1) KiB on disk" >&2
	for i in $(seq "$ITER"); do
		echo "bench-restore: $m MiB, iteration $i/$ITER: cold boot, then restore" >&2
		rm -f "$TMP/r.json"
		"$MV" --config "$machine" --set machine.vcpus=2 --set memory.size="${m}M" \
			--append microvm.poweroff --boot-report "$TMP/r.json" </dev/null \
			>"$TMP/cold.out" 2>&1
		st=$?
		row="MVCSV restore,$HOSTKIND,$m,$i,cold"
		for p in $phases; do row="$row,$(value "$TMP/r.json" "$p")"; done
		echo "$row,$st"
		rm -f "$TMP/r.json" "$TMP/restore.out"
		"$MV" -v --restore "$TMP/vm$m.state" --api-sock "$TMP/r.sock" \
			--boot-report "$TMP/r.json" </dev/null >"$TMP/restore.out" 2>&1 &
		pid=$!
		wait_in "$TMP/restore.out" "guest user space started" 60
		"$MV" ctl "$TMP/r.sock" stop >/dev/null 2>&1 || kill "$pid"
		wait "$pid"
		st=$?
		row="MVCSV restore,$HOSTKIND,$m,$i,restore"
		for p in $phases; do row="$row,$(value "$TMP/r.json" "$p")"; done
		echo "$row,$st"
	done
	[ "$m" = "${MEMS%% *}" ] || rm -f "$TMP/vm$m.mem"
done

# Memory: one cold VM doing WORK, and CLONES clones of a snapshot of it taken before the
# work (at its shell, no loop), each doing WORK at once.
m=${MEMS%% *}
echo "MVCSV mem,host,memory_mib,what,processes,rss_kib,pss_kib"
echo "bench-restore: one cold-booted VM doing the work, then saved" >&2
boot_vm cold-mem "$m" --api-sock "$TMP/c.sock"
wait_in "$out" "microvm:/#" 300
"$MV" ctl "$TMP/c.sock" pause >/dev/null
"$MV" ctl "$TMP/c.sock" snapshot "$TMP/base.state" "$TMP/base.mem" >&2
"$MV" ctl "$TMP/c.sock" resume >/dev/null
say "$WORK"
wait_in "$out" "^WORK-DONE" 120
echo "MVCSV mem,$HOSTKIND,$m,cold,1,$(kb $pid Rss),$(kb $pid Pss)"
stop_vm "$TMP/c.sock"
echo "bench-restore: $CLONES clones at once, each doing the work" >&2
pids=""
for c in $(seq "$CLONES"); do
	# Its console: the work, read by the restored guest's shell when it runs.
	(
		echo "$WORK"
		while [ ! -e "$TMP/stop" ]; do sleep 0.2; done
	) | "$MV" -v --restore "$TMP/base.state" --api-sock "$TMP/clone$c.sock" \
		>"$TMP/clone$c.out" 2>&1 &
	pids="$pids $!"
done
for c in $(seq "$CLONES"); do wait_in "$TMP/clone$c.out" "^WORK-DONE" 300; done
rss=0 pss=0 done=0
for p in $pids; do
	rss=$((rss + $(kb "$p" Rss))) pss=$((pss + $(kb "$p" Pss)))
done
for c in $(seq "$CLONES"); do grep -q "^WORK-DONE" "$TMP/clone$c.out" && done=$((done + 1)); done
echo "MVCSV mem,$HOSTKIND,$m,clones-$done-of-$CLONES-done,$CLONES,$rss,$pss"
for c in $(seq "$CLONES"); do "$MV" ctl "$TMP/clone$c.sock" stop >/dev/null 2>&1; done
touch "$TMP/stop"
for p in $pids; do wait "$p"; done
rm -rf "$TMP"
echo "MVBENCH-DONE $HOSTKIND"
