#!/bin/sh
# x86-64 boot comparison, run as root inside the emulated x86-64 host (or natively on an
# x86-64 machine with KVM): microvm (machines/x86_64.ini) against QEMU's microvm machine
# (-M microvm -accel kvm), the same kernel (the project's minimal bzImage, then DISTRO_KERNEL
# when set), the same initramfs (its init powers off as soon as it runs), 256 MiB, 1 vCPU,
# the console on COM1. The two monitors alternate within each round (odd rounds microvm
# first, even rounds QEMU first). Every boot runs under nettool measure: exec to the first
# console byte (QEMU boots through the kernel's real-mode setup, whose messages come first;
# microvm enters the 64-bit kernel directly), to the kernel's first line ("Linux version"), to
# the guest's "init reached" line, to exit, and the peak RSS; microvm's --boot-report adds its
# own phases (first KVM_RUN, first console output, user space).
# Prints "MVX86 MONITOR KERNEL ROUND EXIT_MS FIRST_OUTPUT_MS KERNEL_LINE_MS INIT_MS MAXRSS_KIB
# STATUS [FIRST_KVM_RUN_MS FIRST_CONSOLE_MS INIT_REACHED_MS]" lines (tests/bench/x86-run.sh
# makes the report).
MV=${MV:-/microvm}
MVDIR=${MVDIR:-/}
QEMU=${QEMU:-qemu-system-x86_64}
NETTOOL=${NETTOOL:-nettool}
RUNS=${BENCH_RUNS:-3}
G=$MVDIR/build/guest-x86_64
TMP=${TMPDIR:-/tmp}/mvx86.$$
mkdir -p "$TMP"
export MEASURE_MARK="microvm-guest: init reached" MEASURE_MARK2="Linux version"

field() { echo " $(cat "$TMP/m.txt")" | sed -n "s/.* $1 \([0-9.-]*\).*/\1/p"; }
report() { sed -n "s/^ *\"$1\": \([0-9.-]*\|null\),*$/\1/p" "$TMP/r.json" | head -n 1; }

# one MONITOR KERNEL-NAME KERNEL ROUND
one() {
	rm -f "$TMP/m.txt" "$TMP/r.json"
	case $1 in
	microvm)
		"$NETTOOL" measure "$TMP/m.txt" "$MV" --config "$MVDIR/machines/x86_64.ini" \
			--kernel "$3" --initrd "$G/initramfs-poweroff.cpio.gz" \
			--set machine.vcpus=1 --set memory.size=256M --boot-report "$TMP/r.json" \
			</dev/null >"$TMP/out" 2>&1
		;;
	qemu)
		# QEMU's own messages go to a file: the first output must be the guest's.
		"$NETTOOL" measure "$TMP/m.txt" sh -c "exec $QEMU -M microvm,x-option-roms=off,rtc=off \
			-accel kvm -cpu host -m 256M -smp 1 -nodefaults -no-user-config \
			-display none -no-reboot -serial stdio -kernel $3 \
			-initrd $G/initramfs-poweroff.cpio.gz -append 'console=ttyS0 panic=-1' \
			2>$TMP/qemu.err" </dev/null >"$TMP/out" 2>&1
		;;
	esac
	if ! grep -aq "init reached" "$TMP/out"; then
		echo "MVX86-ERROR $1 $2 round $4"
		tail -n 15 "$TMP/out" "$TMP/qemu.err" 2>/dev/null
		return
	fi
	# What the first console output was (round 1): the kernel's, or firmware's.
	[ "$4" = 1 ] && echo "MVX86-HEAD $1 $2: $(tr -d '\r' <"$TMP/out" | grep -av '^ *$' |
		head -n 2 | tr '\n' '|' | cut -c1-160)"
	line="MVX86 $1 $2 $4 $(field ms) $(field first_output) $(field mark2) $(field mark)"
	line="$line $(field maxrss_kib) $(field status)"
	[ -s "$TMP/r.json" ] &&
		line="$line $(report first_kvm_run) $(report first_console_output) $(report init_reached)"
	echo "$line"
}

kernels="minimal"
[ -n "${DISTRO_KERNEL:-}" ] && [ -f "$DISTRO_KERNEL" ] && kernels="minimal distro"
echo "MVX86 version qemu $($QEMU --version | head -n 1)"
for r in $(seq 1 "$RUNS"); do
	order="microvm qemu"
	[ $((r % 2)) = 0 ] && order="qemu microvm"
	for k in $kernels; do
		kernel=$G/bzImage
		[ "$k" = distro ] && kernel=$DISTRO_KERNEL
		for m in $order; do
			echo "bench-x86: round $r, $m, $k kernel" >&2
			one "$m" "$k" "$kernel" "$r"
		done
	done
done
rm -rf "$TMP"
echo "MVX86-DONE"
