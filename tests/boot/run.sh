#!/bin/sh
# make run: boots machines/rpi5.ini to an interactive busybox shell. On an arm64 host with a
# working /dev/kvm microvm runs natively; elsewhere it runs inside the emulated Raspberry Pi 5
# host (QEMU TCG with EL2), with the console attached to this terminal.
# Extra microvm arguments can be given in MICROVM_ARGS (e.g. "--set machine.vcpus=2").
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)
make -s guest
if [ "$(uname -m)" = aarch64 ] && [ -w /dev/kvm ]; then
	make -s -j"$jobs"
	# shellcheck disable=SC2086
	exec build/microvm --config machines/rpi5.ini ${MICROVM_ARGS:-}
fi
make -s -j"$jobs" CROSS_COMPILE=aarch64-linux-gnu-
echo "microvm: no arm64 KVM here; booting inside the emulated Raspberry Pi 5 host." >&2
echo "microvm: Ctrl-A x quits; 'poweroff' in the guest ends the run." >&2
# shellcheck disable=SC2086
exec tests/boot/emulated-host.sh rpi5 run ${MICROVM_ARGS:-}
