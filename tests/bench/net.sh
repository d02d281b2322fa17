#!/bin/sh
# Network benchmark, run as root inside an emulated host (or natively on an arm64 board with
# KVM): TCP throughput between this host and a guest through a TAP, MIB MiB per transfer with
# nettool, each direction, BENCH_RUNS (3) times, for virtio-mmio, virtio-pci with MSI-X and with INTx;
# and the same transfer over this host's loopback (what the host alone achieves). Then
# iperf3 (from TOOLS, the tools tree of guest-images/build-tools.sh, or PATH; the guest
# mounts the tools disk) for IPERF_SECONDS (5) each way, BENCH_RUNS times.
# Prints "MVBENCH net CASE DIRECTION RUN MB/s" and
# "MVEXITS CASE EXITS MMIO-EXITS FRAMES TRAPPED" (TRAPPED: exits on the NIC's own registers).
MV=${MV:-/microvm}
MVDIR=${MVDIR:-/}
NETTOOL=${NETTOOL:-nettool}
HOSTKIND=${HOSTKIND:-rpi5}
RUNS=${BENCH_RUNS:-3}
MIB=${MIB:-64}
SECS=${IPERF_SECONDS:-5}
IPERF=iperf3
[ -n "${TOOLS:-}" ] && IPERF=$TOOLS/bin/iperf3
TMP=${TMPDIR:-/tmp}/mvbench.$$
mkdir -p "$TMP"
machine=$MVDIR/machines/rpi5.ini
[ "$HOSTKIND" = gicv3 ] && machine=$MVDIR/machines/virt-gicv3.ini

mbps() { sed -n "s/.*nettool $1 [0-9]* bytes [0-9.]* s \([0-9.]*\) MB\/s.*/\1/p" "$2" | tail -n 1; }

# until PATTERN [COUNT] [TENTHS]: wait for PATTERN to appear COUNT times in the guest output
until_seen() {
	n=0
	while [ "$(grep -c -- "$1" "$TMP/out")" -lt "${2:-1}" ] && [ $n -lt "${3:-1200}" ]; do
		sleep 0.1
		n=$((n + 1))
	done
}

for r in $(seq "$RUNS"); do
	"$NETTOOL" recv 5100 >/dev/null 2>"$TMP/lo.log" &
	"$NETTOOL" send 127.0.0.1 5100 "$MIB" 2>/dev/null
	wait $!
	echo "MVBENCH net host-loopback one-way $r $(mbps received "$TMP/lo.log")"
done

idx=0
# BENCH_SECCOMP="on off": each case with and without the sandbox's filters, one after the
# other (those without are named CASE-seccomp-off).
for combo in mmio pci-msix pci-intx; do for sc in ${BENCH_SECCOMP:-on}; do
	idx=$((idx + 1))
	case=$combo
	[ "$sc" = on ] || case=$combo-seccomp-$sc
	echo "bench-net: case $idx ($case)" >&2
	transport=mmio
	extra="--set machine.seccomp=$sc"
	case $combo in
	pci-msix) transport=pci ;;
	pci-intx) transport=pci extra="$extra --set pci.msi=off" ;;
	esac
	rm -f "$TMP/in" "$TMP/out"
	mkfifo "$TMP/in"
	# shellcheck disable=SC2086
	"$MV" -v --config "$machine" --set machine.vcpus=2 --set memory.size=256M \
		--set net0.type=virtio-net --set net0.tap=mvbench0 \
		--set tools.type=virtio-blk --set tools.path="$MVDIR/build/guest/tools.ext4" \
		--set tools.readonly=on \
		--set net0.transport=$transport $extra <"$TMP/in" >"$TMP/out" 2>&1 &
	pid=$!
	exec 3>"$TMP/in"
	until_seen "microvm:/#"
	ip addr add 192.168.110.1/24 dev mvbench0
	echo "stty cols 500; ip link set eth0 up; ip addr add 192.168.110.2/24 dev eth0; mkdir -p /mnt; mount -o ro /dev/vda /mnt; echo UP-\$((1+1))" >&3
	until_seen "^UP-2"
	for r in $(seq "$RUNS"); do
		echo "nettool recv 5101 >/dev/null" >&3
		until_seen "nettool listening on 5101" "$r"
		"$NETTOOL" send 192.168.110.2 5101 "$MIB" 2>"$TMP/h2g.log"
		until_seen "nettool received" "$r"
		echo "MVBENCH net $case host-to-guest $r $(mbps sent "$TMP/h2g.log")"
		"$NETTOOL" recv 5102 >/dev/null 2>"$TMP/g2h.log" &
		rpid=$!
		echo "nettool send 192.168.110.1 5102 $MIB" >&3
		wait $rpid
		echo "MVBENCH net $case guest-to-host $r $(mbps received "$TMP/g2h.log")"
	done
	for r in $(seq "$RUNS"); do
		for dir in guest-to-host host-to-guest; do
			rev=""
			[ $dir = host-to-guest ] && rev=-R
			"$IPERF" -s -1 -p 5201 >/dev/null 2>&1 &
			spid=$!
			sleep 1
			echo "/mnt/bin/iperf3 -c 192.168.110.1 -p 5201 -t $SECS -f m $rev | sed -n 's/.* \([0-9.]*\) Mbits.sec.*receiver.*/IPERF-$dir-$r=\1/p'" >&3
			until_seen "^IPERF-$dir-$r=" 1 $(((SECS + 30) * 10))
			wait $spid
			mbit=$(sed -n "s/^IPERF-$dir-$r=\([0-9.]*\).*/\1/p" "$TMP/out" | tr -d '\r')
			echo "MVBENCH net $case iperf3-$dir $r $(echo "${mbit:-0}" | awk '{ printf "%.1f", $1 / 8 }')"
		done
	done
	(trap '' PIPE; echo "poweroff -f" >&3) 2>/dev/null
	exec 3>&-
	wait $pid
	exits=$(sed -n 's/^microvm: \([0-9]*\) exits to microvm, \([0-9]*\) of them MMIO.*/\1 \2/p' "$TMP/out")
	frames=$(sed -n 's/^microvm: net0: queue pair 0: rx \([0-9]*\) frames.* tx \([0-9]*\) frames.*/\1 \2/p' "$TMP/out" |
		awk '{ print $1 + $2 }')
	trapped=$(sed -n 's/^microvm: net0: \([0-9]*\) trapped register accesses.*/\1/p' "$TMP/out")
	echo "MVEXITS $case $exits $frames $trapped"
	grep -q "^UP-2" "$TMP/out" || { echo "MVBENCH-ERROR guest $case"; tail -n 20 "$TMP/out"; }
done; done
rm -rf "$TMP"
echo "MVBENCH-DONE $HOSTKIND"
