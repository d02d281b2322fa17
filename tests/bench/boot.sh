#!/bin/sh
# Boot benchmark, run where microvm runs (inside an emulated host, or natively on an arm64
# board with KVM): BOOT_ITER boots of every case of the matrix, each with --boot-report,
# the guest powering off as soon as its init is reached (microvm.poweroff). Every case has
# one virtio-blk disk (an empty 64 MiB image) on the transport under test.
# Prints one "MVCSV ..." line per boot (the first one is the header) and a progress line on
# stderr. Matrix (space-separated lists): BOOT_TRANSPORTS (mmio pci), BOOT_VCPUS (1 2 4),
# BOOT_MEM_MIB (128 1024), BOOT_KERNELS (minimal, plus distro when DISTRO_KERNEL is set),
# BOOT_SECCOMP (on off: the sandbox's cost; both in every iteration, interleaved). The last
# two columns are the time the sandbox was in place (ms) and the seccomp mode.
MV=${MV:-/microvm}
MVDIR=${MVDIR:-/}
HOSTKIND=${HOSTKIND:-rpi5}
ITER=${BOOT_ITER:-10}
TRANSPORTS=${BOOT_TRANSPORTS:-mmio pci}
VCPUS=${BOOT_VCPUS:-1 2 4}
MEMS=${BOOT_MEM_MIB:-128 1024}
KERNELS=${BOOT_KERNELS:-minimal${DISTRO_KERNEL:+ distro}}
SECCOMPS=${BOOT_SECCOMP:-on off}
TMP=${TMPDIR:-/tmp}/mvboot.$$
mkdir -p "$TMP"
machine=$MVDIR/machines/rpi5.ini
[ "$HOSTKIND" = gicv3 ] && machine=$MVDIR/machines/virt-gicv3.ini
dd if=/dev/zero of="$TMP/disk.img" bs=1M count=64 2>/dev/null

phases="config_parsed boot_files_read vm_built images_loaded first_kvm_run first_console_output init_reached exit"
extras="exits mmio_exits exit_handling_ms monitor_ms rss_kib guest_ram_rss_kib monitor_rss_kib exit_status sandboxed"
# value KEY: a number (or empty for null) from the report
value() { sed -n "s/^ *\"$1\": \\([0-9.-]*\\),*$/\\1/p" "$TMP/r.json" | head -n 1; }

echo "MVCSV host,kernel,transport,vcpus,memory_mib,iteration,$(echo $phases $extras | tr ' ' ','),seccomp"
total=0
for k in $KERNELS; do for t in $TRANSPORTS; do for c in $VCPUS; do for m in $MEMS; do
	total=$((total + 1))
done; done; done; done
n=0
for k in $KERNELS; do
	kernel=""
	[ "$k" = distro ] && kernel="--kernel $DISTRO_KERNEL"
	for t in $TRANSPORTS; do for c in $VCPUS; do for m in $MEMS; do
		n=$((n + 1))
		for i in $(seq "$ITER"); do for sc in $SECCOMPS; do
			echo "bench-boot: case $n/$total ($k kernel, $t, $c vCPU, $m MiB)," \
				"iteration $i/$ITER, seccomp $sc" >&2
			rm -f "$TMP/r.json"
			# shellcheck disable=SC2086
			"$MV" --config "$machine" $kernel --set machine.vcpus="$c" \
				--set memory.size="${m}M" --set blk0.type=virtio-blk \
				--set blk0.path="$TMP/disk.img" --set blk0.transport="$t" \
				--set machine.seccomp="$sc" \
				--append "microvm.poweroff" --boot-report "$TMP/r.json" \
				</dev/null >"$TMP/out" 2>&1
			if [ ! -s "$TMP/r.json" ]; then
				echo "bench-boot: no report; microvm said:" >&2
				tail -n 5 "$TMP/out" >&2
				continue
			fi
			row="$HOSTKIND,$k,$t,$c,$m,$i"
			for key in $phases $extras; do row="$row,$(value "$key")"; done
			echo "MVCSV $row,$sc"
		done; done
	done; done; done
done
rm -rf "$TMP"
echo "MVBENCH-DONE $HOSTKIND"
