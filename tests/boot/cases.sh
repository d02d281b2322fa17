#!/bin/sh
# Boot tests, run inside an emulated KVM host (or natively on an arm64 board with KVM).
# Each case boots a guest with microvm, types commands on its serial console, and checks
# the output and the exit status. Prints "MVTEST <case> PASS|FAIL <why>" and a summary.
# Environment: MV (microvm binary), MVDIR (directory with machines/ and build/guest/),
# HOSTKIND (rpi5, gicv3 or x86), DISTRO_KERNEL (optional path to a distro kernel), MVONLY
# (groups and units to run, comma-separated: boot, blk, net, sandbox, x86, curl, api, snap,
# rng, vsock, balloon or a unit's name such as fio-qd256), MVFROM (skip the units before this
# one), NETTOOL (tests/bench/nettool built for this host), FIO_STRESS_SECONDS (the depth-256
# fio runs). The units are listed at the end; each prints "MVUNIT NAME" as it starts. curl is
# on the PATH.
MV=${MV:-/microvm}
MVDIR=${MVDIR:-/}
HOSTKIND=${HOSTKIND:-rpi5}
TMP=${TMPDIR:-/tmp}/mvtest.$$
mkdir -p "$TMP"
pass=0
fail=0

machine=$MVDIR/machines/rpi5.ini
GUEST=$MVDIR/build/guest
[ "$HOSTKIND" = gicv3 ] && machine=$MVDIR/machines/virt-gicv3.ini
if [ "$HOSTKIND" = x86 ]; then
	machine=$MVDIR/machines/x86_64.ini
	GUEST=$MVDIR/build/guest-x86_64
fi

now() { cut -d' ' -f1 /proc/uptime; }

result() { # case status message
	echo "MVTEST $1 $2 $3"
	if [ "$2" = PASS ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
}

# start NAME ARGS...: start microvm (--config $machine ARGS, or ARGS alone with NOCONFIG=1)
# with a FIFO on stdin; output goes to $TMP/NAME.out
# (its stderr to $ERR instead, when ERR is set); MVWRAP is a command to start it through
# (e.g. setpriv to another user), which must exec it (so that $pid is microvm's)
start() {
	name=$1
	shift
	out=$TMP/$name.out
	rm -f "$TMP/in" "$out"
	mkfifo "$TMP/in"
	t0=$(now)
	echo "MVCASE $name started at $t0 s (host uptime)"
	# NOCONFIG=1: no machine file (the API's default machine), the ARGS say everything.
	[ -n "${NOCONFIG:-}" ] || set -- --config "$machine" "$@"
	if [ -n "${ERR:-}" ]; then
		# The monitor's messages apart from the guest's console (they would interleave).
		# shellcheck disable=SC2086
		${MVWRAP:-} "$MV" -v "$@" <"$TMP/in" >"$out" 2>"$ERR" &
	else
		# shellcheck disable=SC2086
		${MVWRAP:-} "$MV" -v "$@" <"$TMP/in" >"$out" 2>&1 &
	fi
	pid=$!
	exec 3>"$TMP/in"
}

# wait_for PATTERN [COUNT] [TIMEOUT]: wait until PATTERN appears COUNT times in the output
# (sh has no local variables: wait_for's own are wf_*, so a caller's c, n or limit survives)
wait_for() {
	wf_n=0
	wf_limit=$((${3:-60} * 10))
	# (no output file yet, just after start: nothing printed, not "bad number" and a return)
	while wf_c=$(grep -c -- "$1" "$out" 2>/dev/null); [ "${wf_c:-0}" -lt "${2:-1}" ]; do
		wf_n=$((wf_n + 1))
		if [ $wf_n -ge $wf_limit ] || ! kill -0 $pid 2>/dev/null; then
			grep -q -- "$1" "$out" && return 0
			return 1
		fi
		sleep 0.1
	done
}

# A guest that died must fail its case, not kill this script through SIGPIPE on its console:
# the write happens in a subshell that ignores SIGPIPE (children here must keep the default).
type_line() { (trap '' PIPE; echo "$1" >&3) 2>/dev/null; }

# finish [TIMEOUT]: close the console and wait for microvm; sets $status
finish() {
	exec 3>&-
	n=0
	while kill -0 $pid 2>/dev/null && [ $n -lt $((${1:-60} * 10)) ]; do
		n=$((n + 1))
		sleep 0.1
	done
	if kill -0 $pid 2>/dev/null; then
		kill -9 $pid
		wait $pid
		status=timeout
	else
		wait $pid
		status=$?
	fi
}

show() { echo "---- $name output (last 30 lines) ----"; tail -n 30 "$out"; echo "----"; }

expect() { # case condition-description command...
	c=$1
	d=$2
	shift 2
	if "$@"; then result "$c" PASS "$d"; else result "$c" FAIL "$d"; show; fi
}

has() { grep -q -- "$1" "$out"; }

# Boot with N vCPUs and M MiB, type commands, power off.
boot_case() {
	cpus=$1
	mem=$2
	start "boot-${cpus}cpu" --set machine.vcpus="$cpus" --set memory.size="${mem}M" \
		--boot-report "$TMP/report.json"
	if ! wait_for "init reached" 1 120; then
		finish 5
		result "boot-${cpus}cpu" FAIL "guest did not reach init"
		show
		return
	fi
	t1=$(now)
	echo "MVTIME boot-${cpus}cpu exec-to-init $(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}') s"
	sed -n 's/.*\(init reached after [0-9.]* s\).*/MVTIME guest-kernel \1/p' "$out"
	sed -n 's/^microvm: \(.* at [0-9.]* ms\).*/MVTIME monitor \1/p' "$out"
	wait_for "microvm:/#" 1 10
	type_line 'echo typed-$((6*7))'
	type_line 'echo CPUS=$(nproc)'
	type_line "echo MEM=\$(sed -n 's/MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
	[ "$HOSTKIND" != x86 ] || type_line 'echo PVSPIN=$(dmesg | grep -c "PV spinlocks enabled")'
	# The VM generation ID's driver bound (arm64: its device tree node; x86-64: the DSDT's
	# VMGENCTR, with the Generic Event Device on an edge-triggered IOAPIC line; neither the
	# GED driver nor ACPICA complained).
	type_line 'echo VMGENID=$(ls /sys/bus/platform/drivers/vmgenid | grep -cv -e bind -e uevent)'
	[ "$HOSTKIND" != x86 ] ||
		type_line 'echo GED=$(grep -c "IO-APIC.*-edge.*ACPI:Ged" /proc/interrupts),$(dmesg | grep -c -e acpi-ged -e "ACPI.*Error")'
	wait_for "MEM=[0-9]" 1 30
	wait_for "^VMGENID=" 1 30
	[ "$HOSTKIND" != x86 ] || wait_for "^PVSPIN=" 1 30
	[ "$HOSTKIND" != x86 ] || wait_for "^GED=" 1 30
	type_line 'poweroff -f'
	finish 60
	sed -n 's/^microvm: \(RSS .*\)/MVTIME monitor \1/p' "$out"
	expect "boot-${cpus}cpu" "typed command ran" has "^typed-42"
	expect "boot-${cpus}cpu" "guest sees $cpus CPUs" has "^CPUS=$cpus"
	memkb=$(sed -n 's/^MEM=\([0-9]*\).*/\1/p' "$out" | head -n 1)
	# MemTotal is RAM minus what the kernel reserves for itself: within 15% of RAM.
	expect "boot-${cpus}cpu" "guest sees ~${mem} MiB (MemTotal ${memkb:-?} kB)" \
		test "${memkb:-0}" -gt $((mem * 1024 * 85 / 100)) -a "${memkb:-0}" -le $((mem * 1024))
	expect "boot-${cpus}cpu" "poweroff gives exit 0 (got $status)" test "$status" = 0
	# An x86-64 guest with more than one vCPU takes paravirtual spinlocks (PV_UNHALT).
	if [ "$HOSTKIND" = x86 ]; then
		pv=$([ "$cpus" -gt 1 ] && echo 1 || echo 0)
		expect "boot-${cpus}cpu" "paravirtual spinlocks: $([ "$pv" = 1 ] && echo on || echo off with one vCPU)" \
			has "^PVSPIN=$pv"
	fi
	expect "boot-${cpus}cpu" "the vmgenid driver bound its device" has "^VMGENID=1"
	[ "$HOSTKIND" != x86 ] || expect "boot-${cpus}cpu" \
		"the Generic Event Device took its edge-triggered line (GED=interrupts,errors)" \
		has "^GED=1,0"
	boot_report_checks "boot-${cpus}cpu" "$cpus" "$mem"
}

# report_ms KEY: a timeline value (ms) from the boot report, or "null"
report_ms() { sed -n "s/^ *\"$1\": \([0-9.]*\|null\),*$/\1/p" "$TMP/report.json" | head -n 1; }

# boot_report_checks CASE CPUS MEM: --boot-report wrote a complete, ordered timeline
boot_report_checks() {
	prev=0
	ordered=yes
	for k in config_parsed boot_files_read vm_built images_loaded first_kvm_run \
		first_console_output init_reached exit; do
		v=$(report_ms $k)
		if [ -z "$v" ] || [ "$v" = null ] ||
			! awk -v a="$prev" -v b="$v" 'BEGIN { exit !(a <= b) }'; then
			ordered="no ($k = ${v:-missing} after $prev)"
			break
		fi
		prev=$v
	done
	expect "$1" "boot report: every phase present and in order: $ordered" test "$ordered" = yes
	# The sandbox is in place between the images' loading and the guest's user space.
	expect "$1" "boot report: sandboxed at $(report_ms sandboxed) ms" \
		awk -v a="$(report_ms images_loaded)" -v s="$(report_ms sandboxed)" \
		-v b="$(report_ms init_reached)" 'BEGIN { exit !(s != "" && a <= s && s <= b) }'
	expect "$1" "boot report: vCPUs, memory, exit status" sh -c "
		grep -q '\"vcpus\": $2,' '$TMP/report.json' &&
		grep -q '\"memory_mib\": $3,' '$TMP/report.json' &&
		grep -q '\"exit_status\": 0,' '$TMP/report.json'"
	mon=$(report_ms monitor_ms)
	rss=$(sed -n 's/^ *"monitor_rss_kib": \([0-9]*\).*/\1/p' "$TMP/report.json")
	expect "$1" "boot report: monitor share ${mon:-?} ms, monitor RSS ${rss:-?} KiB" \
		sh -c "[ -n '$rss' ] && [ '$rss' -gt 0 ] && awk -v m='$mon' -v r='$(report_ms first_kvm_run)' 'BEGIN { exit !(m >= r) }'"
	echo "MVTIME $1 guest user space at $(report_ms init_reached) ms (boot timer)"
}

summary() {
	rm -rf "$TMP"
	echo "MVTEST-SUMMARY $HOSTKIND: $pass passed, $fail failed"
}

# x86-64 only: the distro kernel on virtio-pci (its virtio-pci is built in, the block driver
# a module it cannot load here: the device must be found and bound to virtio-pci with
# MSI-X), RAM split around the PCI hole, reboot through the ACPI reset register and through
# the i8042, Ctrl-A x.
distro_pci_case() {
	[ -n "${DISTRO_KERNEL:-}" ] && [ -f "$DISTRO_KERNEL" ] || return 0
	start distro-pci --kernel "$DISTRO_KERNEL" --set memory.size=512M \
		--set machine.vcpus=2 --set blk0.type=virtio-blk \
		--set blk0.path="$GUEST/rootfs.ext4" --set blk0.readonly=on \
		--set blk0.transport=pci
	wait_for "init reached" 1 240 && wait_for "microvm:/#" 1 10
	type_line 'for d in /sys/bus/virtio/devices/*; do echo VDEV=$(cat $d/device),$(basename $(readlink $d/driver 2>/dev/null || echo none)),$(basename $(readlink -f $d/..)); done'
	type_line 'grep -c PCI-MSI /proc/interrupts | sed "s/^/MSIX=/"'
	type_line 'echo LISTED'
	wait_for "^LISTED" 1 30
	type_line 'poweroff -f'
	finish 60
	expect distro-pci "a virtio block device (0x0002) on PCI 0000:00:01.0" \
		has "^VDEV=0x0002,.*,0000:00:01.0"
	expect distro-pci "exit 0 (got $status)" test "$status" = 0
}

# 4608 MiB: 3 GiB below the PCI hole, the rest at 4 GiB (a second memory slot): the guest
# sees all of it, as a Normal zone above 4 GiB (which allocations take first), and fills
# 256 MiB of a tmpfs.
split_ram_case() {
	start split-ram --set memory.size=4608M
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'grep -q "zone *Normal" /proc/zoneinfo && echo HIGH-ZONE'
	type_line "echo MEM=\$(sed -n 's/MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
	type_line 'mkdir -p /mnt && mount -t tmpfs -o size=3G t /mnt && dd if=/dev/zero of=/mnt/f bs=1M count=256 2>/dev/null && echo FILLED-$(($(wc -c </mnt/f) >> 20))'
	wait_for "^FILLED-\|^MEM=" 2 60
	type_line 'poweroff -f'
	finish 60
	memkb=$(sed -n 's/^MEM=\([0-9]*\).*/\1/p' "$out" | head -n 1)
	expect split-ram "guest sees ~4608 MiB (MemTotal ${memkb:-?} kB)" \
		test "${memkb:-0}" -gt $((4608 * 1024 * 85 / 100))
	expect split-ram "a memory zone above 4 GiB" has "^HIGH-ZONE"
	expect split-ram "256 MiB written to a tmpfs" has "^FILLED-256"
	expect split-ram "exit 0 (got $status)" test "$status" = 0
}

# reboot_case HOW: the kernel's default order tries the ACPI reset register first.
reboot_case() {
	start "reboot-$1" --set memory.size=256M --append "reboot=$1"
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'reboot -f'
	finish 60
	expect "reboot-$1" "reboot=$1 gives exit 3 (got $status)" test "$status" = 3
}

# Ctrl-A x on a terminal ends microvm with status 4 (nettool measure gives it a
# pseudo-terminal and writes its exit status).
ctrl_a_x_case() {
	name=ctrl-a-x
	out=$TMP/$name.out
	rm -f "$TMP/in" "$out" "$TMP/m.txt"
	mkfifo "$TMP/in"
	echo "MVCASE $name started at $(now) s (host uptime)"
	"${NETTOOL:-nettool}" measure "$TMP/m.txt" "$MV" --config "$machine" \
		--set memory.size=256M <"$TMP/in" >"$out" 2>&1 &
	pid=$!
	exec 3>"$TMP/in"
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	(trap '' PIPE; printf '\001x' >&3) 2>/dev/null
	finish 30
	got=$(sed -n 's/.*status \([0-9]*\).*/\1/p' "$TMP/m.txt" 2>/dev/null)
	expect ctrl-a-x "Ctrl-A x gives exit 4 (got ${got:-none})" test "${got:-}" = 4
}

# The network group (tests/boot/net-cases.sh, next to this script) creates TAP interfaces:
# it needs root and /dev/net/tun (net_ok says so once).
. "$(dirname "$0")/net-cases.sh"
# The block stress and misbehaving-driver group (tests/boot/blk-cases.sh).
. "$(dirname "$0")/blk-cases.sh"
# Seccomp, privilege drop, unprivileged start (tests/boot/sandbox-cases.sh).
. "$(dirname "$0")/sandbox-cases.sh"
# The control API (tests/boot/api-cases.sh).
. "$(dirname "$0")/api-cases.sh"
# The balloon (tests/boot/balloon-cases.sh; api() from api-cases.sh).
. "$(dirname "$0")/balloon-cases.sh"
# Snapshot and restore (tests/boot/snap-cases.sh).
. "$(dirname "$0")/snap-cases.sh"
# The entropy devices (tests/boot/rng-cases.sh).
. "$(dirname "$0")/rng-cases.sh"
# virtio-vsock and its Unix socket protocol (tests/boot/vsock-cases.sh).
. "$(dirname "$0")/vsock-cases.sh"
# make run's machine (tests/boot/run-devices.sh): the guest's greeting names each virtio
# device and its transport: a disk on virtio-mmio, one on PCI with MSI-X, and as root a NIC.
in_line() { echo "$line" | grep -q -- "$1"; }
first_run_case() {
	devs=$(sh "$(dirname "$0")/run-devices.sh" "$GUEST" 2>"$TMP/run-devices.err")
	cat "$TMP/run-devices.err"
	# shellcheck disable=SC2086
	start first-run $devs
	wait_for "virtio:" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'poweroff -f'
	finish 60
	line=$(grep -a -o 'microvm-guest: virtio: .*' "$out" | tr -d '\r' | head -n 1)
	expect first-run "greeting names a disk on virtio-mmio ($line)" in_line 'vd[ab] on virtio-mmio'
	expect first-run "greeting names a disk on PCI (MSI-X)" in_line 'vd[ab] on PCI (MSI-X)'
	case "$devs" in
	*net0.type=virtio-net*)
		expect first-run "greeting names eth0 on PCI (MSI-X)" in_line 'eth0 on PCI (MSI-X)'
		;;
	esac
	expect first-run "exit 0 (got $status)" test "$status" = 0
}

# --- the cases ------------------------------------------------------------------------
# Each case below is a function; the list at the end runs them as units, each named, in a
# group (boot, blk, net, sandbox, x86, curl, api, snap). unit prints "MVUNIT NAME" as a unit starts. A
# host that stalled is started again with MVFROM=NAME: the units before NAME are skipped
# (their results came from the run that stalled). MVONLY=GROUP,NAME,... runs only those
# groups and units.

# A kernel panic with panic=-1 resets the guest: microvm exits with 3 (on_reboot = exit).
panic_case() {
	start panic --set machine.vcpus=2 --set memory.size=256M
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'echo c > /proc/sysrq-trigger'
	wait_for "Kernel panic" 1 60
	finish 60
	expect panic "kernel panic is reported" has "Kernel panic"
	expect panic "panic + panic=-1 gives exit 3 (got $status)" test "$status" = 3
}

# reboot with on_reboot = restart: the guest boots a second time, then powers off.
restart_case() {
	start restart --set machine.on_reboot=restart --set memory.size=256M
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'reboot -f'
	wait_for "init reached" 2 120 && p=$(grep -c "microvm:/#" "$out")
	wait_for "microvm:/#" $((p + 1)) 30
	type_line 'echo second-boot-$((2+3))'
	wait_for "second-boot-5" 1 30
	type_line 'poweroff -f'
	finish 60
	expect restart "guest booted twice" test "$(grep -c 'init reached' "$out")" = 2
	expect restart "commands run after the restart" has "^second-boot-5"
	expect restart "final poweroff gives exit 0 (got $status)" test "$status" = 0
}

# A host stdout nobody reads: the guest fills it and the console buffer behind it, then
# SIGTERM must still end microvm at once (the vCPUs never block on the host's output).
console_blocked_case() {
	rm -f "$TMP/in" "$TMP/stuck" "$TMP/stuck.seen"
	mkfifo "$TMP/in" "$TMP/stuck"
	# The reader takes the boot output up to init, then stops reading with the pipe open.
	awk -v seen="$TMP/stuck.seen" '{ print > seen; fflush(seen) }
		/init reached/ { system("sleep 3601") }' <"$TMP/stuck" &
	holder=$!
	echo "MVCASE console-blocked started at $(now) s (host uptime)"
	"$MV" --config "$machine" --set memory.size=256M <"$TMP/in" >"$TMP/stuck" 2>"$TMP/stuck.err" &
	pid=$!
	exec 3>"$TMP/in"
	n=0
	while ! grep -q "init reached" "$TMP/stuck.seen" 2>/dev/null && [ $n -lt 1200 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	type_line 'yes microvm-console-flood | head -c 400000; echo FLOOD-DONE'
	sleep 5
	t0=$(now)
	kill -TERM $pid
	finish 10
	t1=$(now)
	pkill -f "sleep 3601"
	kill $holder 2>/dev/null
	wait $holder 2>/dev/null
	took=$(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}')
	out=$TMP/stuck.err
	expect console-blocked "the guest reached init" grep -q "init reached" "$TMP/stuck.seen"
	expect console-blocked "SIGTERM with a blocked stdout: exit 4 (got $status) in ${took} s" \
		sh -c "[ '$status' = 4 ] && awk -v t='$took' 'BEGIN { exit !(t < 3) }'"
	expect console-blocked "and it says why it stopped" has "stopped by signal 15"
}

# host = file: the guest's console goes to a file, not to stdout. It takes no input:
# microvm.poweroff powers the guest off once init is reached.
console_file_case() {
	rm -f "$TMP/console.txt"
	start console-file --set memory.size=256M --set uart0.host=file \
		--set uart0.path="$TMP/console.txt" --append microvm.poweroff
	finish 120
	mvout=$out
	out=$TMP/console.txt
	expect console-file "the guest's boot log is in the file" has "Booting Linux"
	expect console-file "its init was reached there" has "microvm-guest: init reached"
	out=$mvout
	expect console-file "none of it on stdout" sh -c "! grep -q 'Booting Linux' '$out'"
	expect console-file "poweroff gives exit 0 (got $status)" test "$status" = 0
}

# host = pty with a log: the pty's path is printed. With nothing attached the guest goes on
# (30 KB typed into the pty is mostly dropped, all of it logged); then a reader attaches,
# a command typed into the pty runs and its output comes back there; poweroff.
console_pty_case() {
	rm -f "$TMP/pty.log" "$TMP/pty.out"
	start console-pty --set memory.size=256M --set uart0.host=pty --set uart0.log="$TMP/pty.log"
	mvout=$out
	wait_for "console on /dev/pts/" 1 30
	pty=$(sed -n 's|^microvm: uart0 console on \(/dev/pts/[0-9]*\).*|\1|p' "$out" | head -n 1)
	out=$TMP/pty.log
	wait_for "microvm-guest: init reached" 1 120 && wait_for "microvm:/#" 1 10
	# (printf opens the pty, writes and closes it: nothing stays attached)
	[ -n "$pty" ] && printf 'yes flood | head -n 5000; echo FLOOD-$((2+3))\n' >"$pty"
	wait_for "^FLOOD-5" 1 120
	floods=$(grep -c '^flood' "$out")
	cat "$pty" >"$TMP/pty.out" 2>/dev/null &
	reader=$!
	[ -n "$pty" ] && printf 'echo pty-$((6*7))\n' >"$pty"
	out=$TMP/pty.out
	wait_for "^pty-42" 1 30
	[ -n "$pty" ] && printf 'poweroff -f\n' >"$pty"
	out=$mvout
	finish 60
	kill $reader 2>/dev/null
	wait $reader 2>/dev/null
	expect console-pty "its path is printed (${pty:-none})" test -n "$pty"
	expect console-pty "with nothing attached the guest ran its flood to the end" \
		grep -q "^FLOOD-5" "$TMP/pty.log"
	expect console-pty "the log holds all of it ($floods of 5000 lines)" test "$floods" = 5000
	expect console-pty "and the monitor counted what it dropped" has "dropped with nothing attached"
	expect console-pty "a reader attached later runs a command" grep -q "^pty-42" "$TMP/pty.out"
	expect console-pty "the log has it too" grep -q "^pty-42" "$TMP/pty.log"
	expect console-pty "none of the guest's output on stdout" sh -c "! grep -q 'pty-42' '$out'"
	expect console-pty "poweroff gives exit 0 (got $status)" test "$status" = 0
}

# gic version = auto takes what the host offers; the kernel here is the gzip-compressed
# Image (microvm inflates it), which must boot like the plain one.
gic_auto_case() {
	gz=$MVDIR/build/guest/Image.gz
	[ -f "$gz" ] || gz=$MVDIR/build/guest/Image
	start gic-auto --kernel "$gz" --set gic.version=auto --set gic.cpu_interface=0x08010000 \
			--set gic.redistributor=0x080a0000 --set gic.redistributor_size=0x80000 \
			--set machine.vcpus=2 --set memory.size=256M
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'poweroff -f'
	finish 60
	want=2
	[ "$HOSTKIND" = gicv3 ] && want=3
	expect gic-auto "auto picked GICv$want" has "GICv$want created"
	expect gic-auto "$(basename "$gz") reaches init" has "init reached"
	expect gic-auto "exit 0 (got $status)" test "$status" = 0
}

# --- virtio-blk -------------------------------------------------------------------------
# Disks live in the host's tmpfs. rand: 4 MiB of random data (read-only); the write targets
# start zeroed. The guest copies rand onto each write target with dd (large requests, through
# the page cache, fsync), so what it writes is checked on the host against rand's sha256.
# (Data produced in the nested guest's shell, byte by byte, would be the slowest part of
# these tests; heavy verified I/O at depth 256 is the fio group's, tests/boot/blk-cases.sh.)
blk_setup() {
	[ -z "${rand_sum:-}" ] || return 0
	dd if=/dev/urandom of="$TMP/rand.img" bs=1M count=4 2>/dev/null
	rand_sum=$(sha256sum <"$TMP/rand.img" | cut -d' ' -f1)
	zero12_sum=$(head -c $((3 * MIB4)) /dev/zero | sha256sum | cut -d' ' -f1)
}
MIB4=4194304

# landed PATTERN IMAGE: the guest said PATTERN; the 16 MiB IMAGE holds rand, then zeros
landed() {
	has "$1" && [ "$(head -c $MIB4 "$2" | sha256sum | cut -d' ' -f1)" = "$rand_sum" ] &&
		[ "$(tail -c +$((MIB4 + 1)) "$2" | sha256sum | cut -d' ' -f1)" = "$zero12_sum" ]
}

# blk_case NAME ENGINE ROOT_TRANSPORT RAND_TRANSPORT "WRITE_TRANSPORTS" [MICROVM ARGS...]
# The root file system is on blk0 (/dev/vda: virtio-mmio disks probe before PCI ones, so
# blk0 must be on virtio-mmio or every disk on PCI); rand is blk1; one zeroed write target
# per word of WRITE_TRANSPORTS (w0, w1, ...). In the guest a disk is found by its serial
# (the section name), not by probe order.
blk_case() {
	name=$1
	engine=$2
	wtrs=$5
	args="--set blk0.type=virtio-blk --set blk0.path=$TMP/root.ext4 --set blk0.engine=$engine"
	args="$args --set blk0.transport=$3 --set blk0.queues=2"
	args="$args --set blk1.type=virtio-blk --set blk1.path=$TMP/rand.img --set blk1.readonly=on"
	args="$args --set blk1.engine=$engine --set blk1.transport=$4"
	wdisks=""
	i=0
	for tr in $5; do
		rm -f "$TMP/w$i.img"
		dd if=/dev/zero of="$TMP/w$i.img" bs=1M count=16 2>/dev/null
		args="$args --set w$i.type=virtio-blk --set w$i.path=$TMP/w$i.img"
		args="$args --set w$i.engine=$engine --set w$i.transport=$tr"
		wdisks="$wdisks w$i"
		i=$((i + 1))
	done
	shift 5
	cp "$GUEST/rootfs.ext4" "$TMP/root.ext4"
	# shellcheck disable=SC2086
	start "$name" --set boot.initrd= --append "root=/dev/vda rw init=/init" \
		--set machine.vcpus=2 --set memory.size=256M $args "$@"
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'dev() { for d in /sys/block/vd*; do [ "$(cat $d/serial)" = $1 ] && echo /dev/${d##*/}; done; }'
	# / must be the ext4 on blk0: the device numbers of the root mount and of blk0's disk.
	type_line 'echo ROOT=$(mount | grep " on / " | cut -d" " -f5),$(grep " / / " /proc/self/mountinfo | tail -n 1 | cut -d" " -f3),$(cat /sys/block/$(basename $(dev blk0))/dev)'
	type_line 'echo MQ=$(ls /sys/block/$(basename $(dev blk0))/mq | wc -l)'
	type_line 'echo RAND=$(sha256sum $(dev blk1) | cut -d" " -f1)'
	type_line 'dd if=/dev/zero of=$(dev blk1) bs=4096 count=1 conv=fsync 2>/dev/null && echo RO-WRITE-OK || echo RO-WRITE-REFUSED'
	for w in $wdisks; do
		type_line "dd if=\$(dev blk1) of=\$(dev $w) bs=1M conv=fsync 2>/dev/null && echo WROTE-$w"
	done
	type_line 'echo WRITES-DONE'
	wait_for "^WRITES-DONE" 1 300
	type_line 'for d in /sys/bus/pci/devices/*; do echo PCIDEV=${d##*/}=$(cat $d/vendor):$(cat $d/device); done'
	type_line 'grep virtio /proc/interrupts | sed "s/^/IRQ=/"'
	type_line 'echo LISTED'
	wait_for "^LISTED" 1 30
	type_line 'poweroff -f'
	finish 60
	root=$(sed -n 's/^ROOT=\(.*\)/\1/p' "$out" | tr -d '\r' | head -n 1)
	expect "$name" "root file system is ext4 on blk0 (${root:-?})" \
		sh -c "echo '$root' | awk -F, '\$1 == \"ext4\" && \$2 == \$3 && \$2 ~ /:/ { ok = 1 } END { exit !ok }'"
	expect "$name" "2 queues with 2 vCPUs" has "^MQ=2"
	expect "$name" "random disk reads back (sha256)" has "^RAND=$rand_sum"
	expect "$name" "read-only disk refuses writes" has "^RO-WRITE-REFUSED"
	expect "$name" "read-only image unchanged on the host" \
		test "$(sha256sum <"$TMP/rand.img" | cut -d' ' -f1)" = "$rand_sum"
	set -- $wtrs
	for w in $wdisks; do
		expect "$name" "4 MiB the guest wrote on $w ($1) land in the image, the rest stays 0" \
			landed "^WROTE-$w" "$TMP/$w.img"
		shift
	done
	expect "$name" "exit 0 (got $status)" test "$status" = 0
	rm -f "$TMP"/w*.img "$TMP/root.ext4"
}

# io_uring with MSI-X (through the ITS on GICv3, the GICv2m frame on GIC-400): root on
# virtio-mmio with 2 queues, the random disk on PCI, a write target on each transport:
# both transports in one machine.
blk_uring_msix_case() {
	blk_setup
	msi=GICv2m
	[ "$HOSTKIND" = gicv3 ] && msi=ITS
	[ "$HOSTKIND" = x86 ] && msi=PCI
	blk_case blk-uring-msix io_uring mmio pci "mmio pci"
	expect blk-uring-msix "virtio-pci functions 00:01.0 and 00:02.0 are 1af4:1042" \
		sh -c "grep -q '^PCIDEV=0000:00:01.0=0x1af4:0x1042' '$out' &&
			grep -q '^PCIDEV=0000:00:02.0=0x1af4:0x1042' '$out'"
	expect blk-uring-msix "host bridge at 00:00.0" has "^PCIDEV=0000:00:00.0=0x1b36:0x0008"
	expect blk-uring-msix "MSI-X vectors in use ($msi)" sh -c "grep '^IRQ=' '$out' | grep -q '$msi.*MSI'"
	# Sum the per-CPU counts of the MSI-X lines of the request queues.
	req_irqs=$(grep '^IRQ=' "$out" | grep MSI | grep req | tr -d '\r' |
		awk '{ for (i = 3; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s + 0 }')
	expect blk-uring-msix "request interrupts arrive on MSI-X vectors ($req_irqs)" test "$req_irqs" -gt 0
}

# The sync engine with INTx: every disk on PCI, root included.
blk_sync_intx_case() {
	blk_setup
	blk_case blk-sync-intx sync pci pci "pci" --set pci.msi=off
	expect blk-sync-intx "three virtio-pci functions" \
		test "$(grep -c '^PCIDEV=0000:00:0[1-3].0=0x1af4:0x1042' "$out")" = 3
	# Level-triggered lines: "Level" on the GIC, "fasteoi" on the IOAPIC.
	level=Level
	[ "$HOSTKIND" = x86 ] && level=fasteoi
	expect blk-sync-intx "INTx (level) interrupts, no MSI" \
		sh -c "grep '^IRQ=' '$out' | grep -q '$level.*virtio' && ! grep '^IRQ=' '$out' | grep -q MSI"
}

# kill -9 right after the guest's fsync loses nothing that was synced, on either transport
# (a disk on each, in one machine).
blk_kill_case() {
	blk_setup
	for tr in mmio pci; do
		rm -f "$TMP/k_$tr.img"
		dd if=/dev/zero of="$TMP/k_$tr.img" bs=1M count=16 2>/dev/null
	done
	start blk-kill --set memory.size=256M \
		--set rand.type=virtio-blk --set rand.path="$TMP/rand.img" --set rand.readonly=on \
		--set k_mmio.type=virtio-blk --set k_mmio.path="$TMP/k_mmio.img" \
		--set k_pci.type=virtio-blk --set k_pci.path="$TMP/k_pci.img" --set k_pci.transport=pci
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'dev() { for d in /sys/block/vd*; do [ "$(cat $d/serial)" = $1 ] && echo /dev/${d##*/}; done; }'
	type_line 'dd if=$(dev rand) of=$(dev k_mmio) bs=1M conv=fsync 2>/dev/null && dd if=$(dev rand) of=$(dev k_pci) bs=1M conv=fsync 2>/dev/null && echo SYNCED'
	wait_for "^SYNCED" 1 300
	# A second microvm on the same image is refused while the first one runs.
	"$MV" --config "$machine" --set memory.size=64M --set blk0.type=virtio-blk \
		--set blk0.path="$TMP/k_mmio.img" </dev/null >"$TMP/second.out" 2>&1
	second=$?
	kill -9 $pid
	finish 10
	for tr in mmio pci; do
		expect blk-kill "synced data on $tr survives kill -9" landed "^SYNCED" "$TMP/k_$tr.img"
	done
	expect blk-lock "second microvm on a locked image exits 1 (got $second)" test "$second" = 1
	out=$TMP/second.out
	expect blk-lock "and says the image is in use" has "is in use by another process"
	rm -f "$TMP"/k_*.img
}

# A GICv2 guest on a GICv3-only host is a clear error, not a crash.
gicv2_on_v3_case() {
	start gicv2-on-v3 --set gic.version=2 --set gic.cpu_interface=0x08010000 \
		--set machine.vcpus=2 --set memory.size=256M
	finish 60
	expect gicv2-on-v3 "exit 1 (got $status)" test "$status" = 1
	expect gicv2-on-v3 "error names the GICv2 problem" has "cannot create a GICv2"
}

# A distro kernel finds its console from stdout-path alone (no console= argument). On arm64
# it is given a PMU ([machine] pmu = on), which its perf driver finds in the device tree.
distro_case() {
	[ -n "${DISTRO_KERNEL:-}" ] && [ -f "$DISTRO_KERNEL" ] || return 0
	pmu=""
	[ "$HOSTKIND" = x86 ] || pmu="--set machine.pmu=on"
	# shellcheck disable=SC2086
	start distro --kernel "$DISTRO_KERNEL" --set memory.size=512M --set machine.vcpus=2 $pmu
	if wait_for "init reached" 1 240; then
		t1=$(now)
		echo "MVTIME distro exec-to-init $(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}') s"
		wait_for "microvm:/#" 1 10
		type_line 'echo PMU=$(ls /sys/bus/event_source/devices | grep -c armv8_pmuv3)'
		type_line 'echo distro-$(uname -r)'
		wait_for "^distro-" 1 30
		type_line 'poweroff -f'
	fi
	finish 60
	expect distro "distro kernel's shell on the console (no console= given)" has "^distro-6.12"
	[ -z "$pmu" ] || expect distro "the guest's perf driver found the PMU (armv8_pmuv3)" \
		has "^PMU=1"
	expect distro "exit 0 (got $status)" test "$status" = 0
}

# --- boot benchmark: its smallest matrix, one boot, keeps tests/bench/boot.sh working -----
bench_smoke_case() {
	BOOTBENCH=${BOOTBENCH:-$(dirname "$0")/../bench/boot.sh}
	BOOT_ITER=1 BOOT_TRANSPORTS=mmio BOOT_VCPUS=1 BOOT_MEM_MIB=128 BOOT_KERNELS=minimal \
		MV="$MV" MVDIR="$MVDIR" HOSTKIND="$HOSTKIND" sh "$BOOTBENCH" >"$TMP/bench.out" 2>&1
	grep '^MVCSV ' "$TMP/bench.out"
	out=$TMP/bench.out
	row=$(grep '^MVCSV [a-z0-9]*,minimal,mmio,1,128,1,' "$out" | head -n 1)
	init=$(echo "$row" | cut -d, -f13)
	expect bench-smoke "boot.sh: one CSV row with the boot timer's init time (${init:-none} ms)" \
		sh -c "[ -n '$init' ] && [ '$(echo "$row" | cut -d, -f22)' = 0 ]"
}

# --- curl: Debian's curl, its libraries and its loader in this host (tests/boot/fetch-curl.sh)
# The HTTP API's tests drive microvm over its Unix socket with it. A socket path nothing
# listens on must end in curl's "couldn't connect" (7): not the shell's 127 (a library or the
# loader missing) nor curl's 2 (no --unix-socket option).
curl_case() {
	name=curl-smoke
	out=$TMP/curl.out
	t0=$(now)
	curl --version >"$out" 2>&1
	status=$?
	t1=$(now)
	expect curl-smoke "curl --version runs (exit $status, $(echo "$t0 $t1" |
		awk '{printf "%.2f", $2 - $1}') s) and has UnixSockets" \
		sh -c "[ $status = 0 ] && grep -q '^Features:.* UnixSockets' '$out'"
	curl -sS --max-time 10 --unix-socket "$TMP/nobody.sock" http://localhost/ >>"$out" 2>&1
	status=$?
	expect curl-smoke "curl --unix-socket to no listener: exit 7, couldn't connect (got $status)" \
		test "$status" = 7
}

# unit GROUP NAME FUNCTION [ARGS...]: run one unit of the boot tests, unless MVONLY leaves
# it out or MVFROM names a unit not yet reached.
unit() {
	if [ -n "${MVFROM:-}" ]; then
		[ "$2" = "$MVFROM" ] || return 0
		MVFROM=""
	fi
	case ",${MVONLY:-$1}," in
	*",$1,"* | *",$2,"*) ;;
	*) return 0 ;;
	esac
	echo "MVUNIT $2 started at $(now) s (host uptime)"
	shift 2
	"$@"
}

# --- the list ---------------------------------------------------------------------------
unit curl curl-smoke curl_case
# The API's getting-started sequence boots the architecture's default machine: the RPi5
# and x86-64 hosts; pause and resume do not depend on the interrupt controller: RPi5 only.
if [ "$HOSTKIND" != gicv3 ]; then
	unit api api-start api_getting_started_case
fi
[ "$HOSTKIND" != rpi5 ] || unit api api-pause api_pause_case
# Snapshots save the vCPUs and the interrupt controller: GICv2 (RPi5), GICv3 and x86-64.
unit snap snap-restore snap_restore_case
unit snap snap-clones snap_clones_case
unit snap snap-clones-net snap_clones_net_case
unit snap snap-mmio snap_devices_case snap-mmio mmio io_uring off
unit snap snap-pci-vhost snap_devices_case snap-pci-vhost pci sync on
# (the cycles do not depend on the interrupt controller, but on the clocks: RPi5 and x86;
# fio under load uses arm64 tools: RPi5 only)
[ "$HOSTKIND" = gicv3 ] || unit snap snap-cycles snap_cycles_case
[ "$HOSTKIND" != rpi5 ] || unit snap snap-fio snap_fio_case
unit snap snap-bad snap_bad_case
unit boot boot-1cpu boot_case 1 256
unit boot boot-4cpu boot_case 4 512
unit boot first-run first_run_case
unit boot panic panic_case
# A restart does not depend on the interrupt controller: RPi5 and x86-64.
[ "$HOSTKIND" = gicv3 ] || unit boot restart restart_case
# The console and the sandbox do not depend on the interrupt controller: one arm64 host (the
# GICv3 one, whose chain of hosts in make check is the shorter).
[ "$HOSTKIND" != gicv3 ] || unit boot console-blocked console_blocked_case
[ "$HOSTKIND" != gicv3 ] || unit boot console-file console_file_case
[ "$HOSTKIND" != gicv3 ] || unit boot console-pty console_pty_case
[ "$HOSTKIND" != gicv3 ] || unit sandbox sandbox sandbox_cases
[ "$HOSTKIND" = x86 ] || unit boot gic-auto gic_auto_case
unit blk blk-uring-msix blk_uring_msix_case
unit blk blk-sync-intx blk_sync_intx_case
# The GIC plays no part in kill -9: on the GICv3 host only.
[ "$HOSTKIND" != gicv3 ] || unit blk blk-kill blk_kill_case
# The fio stress and misbehaving-driver groups use arm64 tools (fio, blkpoke), and the
# interrupt controller plays no part in either: blkpoke (virtio-mmio) on the RPi5 host, the
# stress on the GICv3 one.
[ "$HOSTKIND" != rpi5 ] || unit blk blk-poke blk_poke_case
[ "$HOSTKIND" != gicv3 ] || unit blk fio-qd256 blk_stress_cases
[ "$HOSTKIND" != gicv3 ] || unit boot gicv2-on-v3 gicv2_on_v3_case
unit boot distro distro_case
# The entropy devices do not depend on the interrupt controller: RPi5 and x86-64.
[ "$HOSTKIND" = gicv3 ] || unit rng rng rng_case
# rngpoke is an arm64 tool, and drives virtio-mmio: RPi5 only.
[ "$HOSTKIND" != rpi5 ] || unit rng rng-poke rng_poke_case
if [ "$HOSTKIND" = x86 ]; then
	unit x86 distro-pci distro_pci_case
	unit x86 split-ram split_ram_case
	unit x86 reboot-acpi reboot_case acpi
	unit x86 reboot-k reboot_case k
	unit x86 ctrl-a-x ctrl_a_x_case
fi
# The balloon: RPi5 (16 KiB host pages) and x86-64; free-page reporting on virtio-mmio (RPi5)
# and on PCI with MSI-X (x86-64).
[ "$HOSTKIND" != rpi5 ] || unit balloon balloon-report balloon_reporting_case
[ "$HOSTKIND" != x86 ] || unit balloon balloon-report-pci balloon_reporting_case pci
[ "$HOSTKIND" = gicv3 ] || unit balloon balloon-inflate balloon_inflate_case
# balloonpoke drives virtio-mmio, where the interrupt controller plays no part: RPi5 only.
[ "$HOSTKIND" != rpi5 ] || unit balloon balloon-poke balloon_poke_case
# (virtio-mmio's interrupts are plain SPIs, the same on either GIC, and the GICv3 host drives
# virtio-net on virtio-mmio in net-poke; its 4 KiB pages with TCP are net-pci's, which adds the
# ITS: net-mmio on RPi5 and x86-64)
[ "$HOSTKIND" = gicv3 ] || unit net net-mmio net_mmio_case
unit net net-pci net_pci_case
if [ "$HOSTKIND" = gicv3 ]; then
	unit net net-poke net_poke net-poke mvpoke0 off
	unit net net-poke-vhost net_poke net-poke-vhost mvpoke1 on
fi
[ "$HOSTKIND" = gicv3 ] || unit net net-vhost net_vhost_case
unit net net-errors net_errors_case
unit net net-gone net_gone net-gone off
# (vhost's side of a TAP deleted on the host does not depend on the interrupt controller)
[ "$HOSTKIND" != x86 ] || unit net net-gone-vhost net_gone net-gone-vhost on
[ "$HOSTKIND" != rpi5 ] || unit net many-handlers many_handlers_case
# vsock: RPi5 and x86-64.
[ "$HOSTKIND" = gicv3 ] || unit vsock vsock-mmio vsock_mmio_case
[ "$HOSTKIND" = gicv3 ] || unit vsock vsock-pci vsock_pci_case
# vsockpoke is an arm64 tool, and drives virtio-mmio: RPi5 only.
[ "$HOSTKIND" != rpi5 ] || unit vsock vsock-poke vsock_poke_case
[ "$HOSTKIND" = x86 ] || unit boot bench-smoke bench_smoke_case
summary
