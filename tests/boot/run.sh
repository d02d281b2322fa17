#!/bin/sh
# make run: boots machines/rpi5.ini to an interactive busybox shell. On an arm64 host with a
# working /dev/kvm microvm runs natively; elsewhere it runs inside the emulated Raspberry Pi 5
# host (QEMU TCG with EL2), with the console attached to this terminal.
# The guest gets a disk on virtio-mmio and one on PCI (and a NIC where a TAP can be created):
# tests/boot/run-devices.sh. Extra microvm arguments can be given in MICROVM_ARGS (e.g.
# "--set machine.vcpus=2"); they come after those.
# ARCH=x86_64 boots machines/x86_64.ini instead (in the emulated x86-64 host).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)
if [ "${ARCH:-arm64}" = x86_64 ]; then
	# make run ARCH=x86_64: machines/x86_64.ini, inside the emulated x86-64 host (nested
	# SVM), or natively with MICROVM_NATIVE=1 on an x86-64 machine whose /dev/kvm runs
	# guests at speed (this cannot be told from /dev/kvm alone: nested hosts have one too).
	make -s guest-x86_64
	if [ "$(uname -m)" = x86_64 ] && [ "${MICROVM_NATIVE:-0}" = 1 ]; then
		make -s -j"$jobs"
		# shellcheck disable=SC2086
		exec build/microvm --config machines/x86_64.ini \
			$(tests/boot/run-devices.sh build/guest-x86_64) ${MICROVM_ARGS:-}
	fi
	make -s -j"$jobs" STATIC=1 build/x86_64/microvm
	echo "microvm: booting machines/x86_64.ini inside the emulated x86-64 host." >&2
	echo "microvm: Ctrl-A x quits; 'poweroff' in the guest ends the run." >&2
	# shellcheck disable=SC2086
	exec tests/boot/emulated-host.sh x86 run ${MICROVM_ARGS:-}
fi
make -s guest
if [ "$(uname -m)" = aarch64 ] && [ -w /dev/kvm ]; then
	make -s -j"$jobs"
	# shellcheck disable=SC2086
	exec build/microvm --config machines/rpi5.ini $(tests/boot/run-devices.sh build/guest) \
		${MICROVM_ARGS:-}
fi
make -s -j"$jobs" CROSS_COMPILE=aarch64-linux-gnu-
echo "microvm: no arm64 KVM here; booting inside the emulated Raspberry Pi 5 host." >&2
echo "microvm: Ctrl-A x quits; 'poweroff' in the guest ends the run." >&2
# shellcheck disable=SC2086
exec tests/boot/emulated-host.sh rpi5 run ${MICROVM_ARGS:-}
