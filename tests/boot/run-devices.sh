#!/bin/sh
# The devices of make run's guest, as microvm arguments on stdout: the guest image's root
# disk read-only on virtio-mmio (vda), a 64 MiB scratch disk on PCI (vdb, created sparse if
# missing), and, where microvm can create a TAP (CAP_NET_ADMIN, /dev/net/tun), a NIC on PCI.
# Without one a line on stderr says why. Usage: run-devices.sh GUEST_DIR (build/guest, or its copy
# inside an emulated host).
set -eu
dir=$1
[ -e "$dir/scratch.img" ] || truncate -s 64M "$dir/scratch.img"
printf '%s ' --set blk0.type=virtio-blk --set "blk0.path=$dir/rootfs.ext4" \
	--set blk0.readonly=on \
	--set blk1.type=virtio-blk --set "blk1.path=$dir/scratch.img" --set blk1.transport=pci
# CAP_NET_ADMIN (bit 12) in this shell's effective set: what creating a TAP needs.
cap=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
if [ $((0x${cap:-0} >> 12 & 1)) = 1 ] && [ -c /dev/net/tun ]; then
	printf '%s ' --set net0.type=virtio-net --set net0.transport=pci --set net0.tap=mvrun%d
	echo "microvm: eth0 is on a TAP microvm creates (mvrunN; give it an address on the host" \
		"as in docs/networking.md)" >&2
else
	echo "microvm: no NIC: creating a TAP needs CAP_NET_ADMIN (root) and /dev/net/tun" \
		"(docs/networking.md has set-ups for a user)" >&2
fi
echo
