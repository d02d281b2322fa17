# virtio-net boot tests, sourced by tests/boot/cases.sh (its helpers and counters). Needs
# root on the host (the TAP is created by microvm), busybox ip/ping/udhcpd and nettool.
# All traffic stays between this host and the guest: the TAP gets an address, the guest
# another one (static, or by DHCP from udhcpd on the TAP).
NETTOOL=${NETTOOL:-nettool}
# Each stream's size: enough to wrap every ring many times over (256 KiB rings at most).
STREAM_MIB=16

# net_ok: whether this host can run the network cases (said once when it cannot)
net_ok() {
	[ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] && return 0
	[ -n "${net_skipped:-}" ] || echo "MVTEST net SKIP needs root and /dev/net/tun (not counted)"
	net_skipped=1
	return 1
}

# net_data: the STREAM_MIB MiB of random data sent host -> guest and the pattern's hash,
# made once
net_data() {
	[ -z "${stream_sum:-}" ] || return 0
	PATTERN_SUM=$(yes microvm-pattern | head -c $((STREAM_MIB << 20)) | sha256sum | cut -d' ' -f1)
	dd if=/dev/urandom of="$TMP/stream.bin" bs=1M count=$STREAM_MIB 2>/dev/null
	stream_sum=$(sha256sum <"$TMP/stream.bin" | cut -d' ' -f1)
}

# wait_tap NAME: the TAP appears once microvm has realized the NIC
wait_tap() {
	n=0
	while [ ! -e "/sys/class/net/$1" ] && [ $n -lt 300 ]; do
		n=$((n + 1))
		sleep 0.1
	done
	[ -e "/sys/class/net/$1" ]
}

# mbps FILE DIRECTION: the MB/s nettool reported in FILE
mbps() { sed -n "s/.*nettool $2 [0-9]* bytes [0-9.]* s \([0-9.]*\) MB\/s.*/\1/p" "$1" | tail -n 1; }

# net_transfers NAME HOSTIP GUESTIP: ping both ways, STREAM_MIB MiB each way with sha256
# checks, then as much host -> guest unhashed for a throughput figure. The guest's messages
# are kept off the console meanwhile (dmesg -n 1): one printed in the middle of a result
# line would split it. A failed hash names what arrived.
net_transfers() {
	c=$1
	hip=$2
	gip=$3
	net_data
	type_line 'dmesg -n 1'
	type_line "ping -c 3 -W 5 $hip >/dev/null; echo PING-RESULT=\$?"
	wait_for "^PING-RESULT=[0-9]" 1 60
	expect "$c" "guest pings the host" has "^PING-RESULT=0"
	expect "$c" "host pings the guest" ping -c 3 -W 5 "$gip"
	if ! has "^PING-RESULT=0"; then
		# Without a link each transfer below would only wait out its timeout.
		result "$c" FAIL "$STREAM_MIB MiB transfers skipped: the guest cannot reach the host"
		return
	fi
	# host -> guest: the guest hashes what arrives
	type_line "nettool recv 5001 | sha256sum | sed 's/^/H2G=/'"
	wait_for "nettool listening on 5001" 1 30
	timeout 300 "$NETTOOL" send "$gip" 5001 <"$TMP/stream.bin" 2>"$TMP/h2g.log"
	wait_for "H2G=[0-9a-f]\{64\}" 1 300
	h2g=$(grep -a -o "H2G=[0-9a-f]\{64\}" "$out" | tail -n 1)
	seen=""
	[ "$h2g" = "H2G=$stream_sum" ] || seen=": guest hashed '${h2g:-nothing}', \
$(grep -a -o 'nettool received [0-9]* bytes' "$out" | tail -n 1), sender: $(tr '\n' ' ' <"$TMP/h2g.log")"
	expect "$c" "$STREAM_MIB MiB host -> guest arrive intact (sha256)$seen" test "$h2g" = "H2G=$stream_sum"
	# guest -> host: nettool's pattern is yes microvm-pattern; the host hashes what arrives
	timeout 300 "$NETTOOL" recv 5002 >"$TMP/g2h.bin" 2>"$TMP/g2h.log" &
	rpid=$!
	type_line "nettool send $hip 5002 $STREAM_MIB; echo G2H-DONE=\$?"
	wait_for "^G2H-DONE=[0-9]" 1 300
	wait $rpid
	expect "$c" "$STREAM_MIB MiB guest -> host arrive intact (sha256; $(wc -c <"$TMP/g2h.bin") bytes)" \
		test "$(sha256sum <"$TMP/g2h.bin" | cut -d' ' -f1)" = "$PATTERN_SUM"
	rm -f "$TMP/g2h.bin"
	# host -> guest without hashing, for the throughput figure
	type_line "nettool recv 5003 >/dev/null"
	wait_for "nettool listening on 5003" 1 30
	timeout 300 "$NETTOOL" send "$gip" 5003 "$STREAM_MIB" 2>"$TMP/h2g.log"
	wait_for "nettool received" 2 60
	echo "MVTIME $c tcp host-to-guest $(mbps "$TMP/h2g.log" sent) MB/s ($STREAM_MIB MiB, nettool)"
	echo "MVTIME $c tcp guest-to-host $(mbps "$TMP/g2h.log" received) MB/s ($STREAM_MIB MiB, nettool)"
}

# Static addresses on virtio-mmio; the TAP is created by microvm from a tap%d pattern.
net_mmio_case() {
	net_ok || return 0
	start net-mmio --set machine.vcpus=2 --set memory.size=256M --set net0.type=virtio-net \
		--set net0.tap=mvtap%d
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'stty cols 500' # typed lines must not wrap: output is matched at line starts
	tap=$(sed -n "s/.*net0: TAP '\([^']*\)' (created).*/\1/p" "$out" | head -n 1)
	expect net-mmio "microvm created a TAP from the pattern (${tap:-none})" \
		sh -c "[ -n '$tap' ] && [ -e /sys/class/net/$tap ]"
	ip addr add 192.168.100.1/24 dev "${tap:-mvtap0}"
	type_line 'ip link set eth0 up && ip addr add 192.168.100.2/24 dev eth0 && echo NET-UP'
	type_line 'echo MAC=$(cat /sys/class/net/eth0/address) MTU=$(cat /sys/class/net/eth0/mtu)'
	wait_for "^MAC=" 1 30
	expect net-mmio "guest has eth0 up" has "^NET-UP"
	expect net-mmio "MTU 1500 from the device" has "^MAC=.* MTU=1500"
	mac=$(sed -n 's/^MAC=\([0-9a-f:]*\).*/\1/p' "$out" | tr -d '\r' | head -n 1)
	expect net-mmio "generated MAC $mac is locally administered unicast" \
		sh -c "echo '$mac' | grep -q '^[0-9a-f][26ae]:'"
	net_transfers net-mmio 192.168.100.1 192.168.100.2
	type_line 'poweroff -f'
	finish 60
	expect net-mmio "exit 0 (got $status)" test "$status" = 0
	expect net-mmio "the created TAP is gone after exit" test ! -e "/sys/class/net/${tap:-mvtap0}"
}

# DHCP on PCI with 2 queue pairs on 2 vCPUs, given MAC and MTU, on an existing TAP.
net_pci_case() {
	net_ok || return 0
	"$NETTOOL" mktap mvnet1 mq
	ip addr add 192.168.101.1/24 dev mvnet1
	ip link set mvnet1 mtu 4000 up
	cat >"$TMP/udhcpd.conf" <<EOF
start 192.168.101.50
end 192.168.101.60
interface mvnet1
lease_file $TMP/udhcpd.leases
pidfile $TMP/udhcpd.pid
option subnet 255.255.255.0
option router 192.168.101.1
EOF
	: >"$TMP/udhcpd.leases"
	udhcpd -f "$TMP/udhcpd.conf" >"$TMP/udhcpd.log" 2>&1 &
	dpid=$!
	start net-pci --set machine.vcpus=2 --set memory.size=256M --set net0.type=virtio-net \
		--set net0.tap=mvnet1 --set net0.transport=pci --set net0.queues=2 \
		--set net0.mac=02:00:00:00:10:01 --set net0.mtu=4000
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'stty cols 500'
	type_line 'udhcpc -i eth0 -n -q -t 10 -T 2 2>&1 | grep bound; echo IP=$(ip addr show dev eth0 | sed -n "s/.*inet \([0-9.]*\).*/\1/p")'
	wait_for "^IP=" 1 120
	gip=$(sed -n 's/^IP=\([0-9.]*\).*/\1/p' "$out" | tr -d '\r' | head -n 1)
	expect net-pci "guest got a DHCP lease ($gip)" sh -c "echo '$gip' | grep -q '^192.168.101.5[0-9]$\|^192.168.101.60$'"
	type_line 'echo MAC=$(cat /sys/class/net/eth0/address) MTU=$(cat /sys/class/net/eth0/mtu)'
	type_line 'echo QUEUES=$(ls /sys/class/net/eth0/queues | tr "\n" " ")'
	type_line 'echo ROUTE=$(ip route | grep default)'
	type_line 'echo NETPCI=$(for d in /sys/bus/pci/devices/*; do cat $d/class; done | grep -c 0x020000)'
	wait_for "^NETPCI=" 1 30
	expect net-pci "the configured MAC and MTU reach the guest" has "^MAC=02:00:00:00:10:01 MTU=4000"
	expect net-pci "2 queue pairs (rx-0 rx-1 tx-0 tx-1)" has "^QUEUES=rx-0 rx-1 tx-0 tx-1"
	expect net-pci "default route from the lease" has "^ROUTE=default via 192.168.101.1"
	expect net-pci "an Ethernet controller on PCI" has "^NETPCI=1"
	net_transfers net-pci 192.168.101.1 "${gip:-192.168.101.50}"
	type_line 'poweroff -f'
	finish 60
	kill $dpid 2>/dev/null
	wait $dpid 2>/dev/null
	expect net-pci "exit 0 (got $status)" test "$status" = 0
	expect net-pci "the driver switched to 2 queue pairs" has "net0: 2 queue pairs in use"
	expect net-pci "the existing TAP stays after exit" test -e /sys/class/net/mvnet1
}

# A misbehaving driver (tests/boot/vnetpoke.c, from the guest's user space with the kernel's
# driver unbound) sends malformed headers and oversized frames, posts receive buffers too
# small for any frame, then a descriptor outside RAM. microvm drops and reports each bad
# frame, sets DEVICE_NEEDS_RESET, keeps running; the rebound driver works again. The
# monitor's warnings go to their own file: on the console's they could split the tool's lines.
# With vhost = on the kernel moves the frames and checks the headers it is given (tun's own
# checks, reported in its counters, not by microvm); a ring it cannot use must still end in
# DEVICE_NEEDS_RESET. virtio-mmio only (the interrupt controller plays no part; with vhost the
# interrupts are relayed): on the GICv3 host only.
# net_poke CASE TAP VHOST(on|off)
net_poke() {
	net_ok || return 0
	c=$1
	ERR=$TMP/$c.err
	start "$c" --set machine.vcpus=2 --set memory.size=256M --set net0.type=virtio-net \
		--set net0.tap="$2" --set net0.vhost="$3"
	ERR=""
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'stty cols 500'
	ip addr add 192.168.102.1/24 dev "$2"
	"$MV" --config "$machine" --set net0.type=virtio-net --check >"$TMP/poke-check.out" 2>&1
	base=$(sed -n 's/.*net0: virtio-net.*virtio-mmio at \(0x[0-9a-f]*\),.*/\1/p' "$TMP/poke-check.out")
	type_line 'd=$(basename $(readlink /sys/class/net/eth0/device)); echo $d >/sys/bus/virtio/drivers/virtio_net/unbind'
	type_line "vnetpoke ${base:-0x0a000000} $([ "$3" = on ] && echo vhost)"
	wait_for "RX-POSTED" 1 30
	ping -c 2 -W 2 192.168.102.2 >/dev/null 2>&1 # ARP requests reach the 32-byte buffers
	wait_for "RESET-STATUS=" 1 60
	type_line 'echo $d >/sys/bus/virtio/drivers/virtio_net/bind; ip link set eth0 up; ip addr add 192.168.102.2/24 dev eth0; ping -c 2 -W 5 192.168.102.1 >/dev/null; echo PING-RESULT=$?'
	wait_for "^PING-RESULT=[0-9]" 1 60
	tapstats="tx_dropped $(cat "/sys/class/net/$2/statistics/tx_dropped") rx_dropped $(cat "/sys/class/net/$2/statistics/rx_dropped")"
	type_line 'poweroff -f'
	finish 60
	err=$TMP/$c.err
	expect "$c" "all 8 transmitted chains come back" has "TX-USED=8"
	if [ "$3" = on ]; then
		expect "$c" "received frames too large for the buffers use none (TAP: $tapstats)" \
			has "RX-USED=0"
		expect "$c" "the kernel's ring error is reported" \
			grep -q "the kernel's data path (vhost) cannot use the ring" "$err"
	else
		expect "$c" "received frames too large for the buffers are dropped, none used" \
			sh -c "grep -q 'RX-USED=0' '$out' && grep -q 'received frame dropped: larger than the receive buffer' '$err'"
		for why in "unknown header flags" "checksum position outside the frame" \
			"segmentation offload was not negotiated" "frame larger than the MTU" \
			"segmentation with segment size 0" "guest buffer is writable or shorter than the header" \
			"ECN segmentation was not negotiated"; do
			expect "$c" "dropped and reported: $why" grep -q "transmitted frame dropped: $why (further" "$err"
		done
	fi
	expect "$c" "a descriptor outside RAM sets DEVICE_NEEDS_RESET" has "NEEDS-RESET=1"
	expect "$c" "reset clears the status" has "RESET-STATUS=0"
	expect "$c" "the rebound driver reaches the host" has "^PING-RESULT=0"
	expect "$c" "microvm kept running: exit 0 (got $status)" test "$status" = 0
}

# vhost = on over PCI with MSI-X (GICv2m), 2 queue pairs: the kernel moves the frames, its
# interrupts go straight to the vectors' irqfds (microvm relays only those sent while a
# vector was masked or not yet routed). On the RPi5 host (GICv2m) and the x86-64 host (LAPIC).
net_vhost_case() {
	net_ok || return 0
	start net-vhost --set machine.vcpus=2 --set memory.size=256M --set net0.type=virtio-net \
		--set net0.tap=mvvh%d --set net0.transport=pci --set net0.queues=2 --set net0.vhost=on
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'stty cols 500'
	tap=$(sed -n "s/.*net0: TAP '\([^']*\)' (created).*/\1/p" "$out" | head -n 1)
	ip addr add 192.168.103.1/24 dev "${tap:-mvvh0}"
	type_line 'ip link set eth0 up && ip addr add 192.168.103.2/24 dev eth0 && echo NET-UP'
	wait_for "^NET-UP" 1 30
	net_transfers net-vhost 192.168.103.1 192.168.103.2
	type_line 'poweroff -f'
	finish 60
	expect net-vhost "exit 0 (got $status)" test "$status" = 0
	expect net-vhost "the kernel moved the frames" has "net0: queue pair 0: data in the kernel (vhost)"
	expect net-vhost "the driver switched to 2 queue pairs" has "net0: 2 queue pairs in use"
	relayed=$(sed -n 's/.*net0: queue pair 0: data in the kernel (vhost), \([0-9]*\) interrupts relayed.*/\1/p' "$out" | head -n 1)
	expect net-vhost "interrupts go to the MSI-X irqfds, not through microvm (${relayed:-?} relayed)" \
		test "${relayed:-999}" -lt 100
}

# cpu_ticks PID: the CPU time (user + system, clock ticks) of PID's main thread, the event loop
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/task/$1/stat" 2>/dev/null || echo 0; }

# The TAP deleted on the host while the guest runs: microvm says so once, stops watching it
# (a deleted TAP reports EPOLLERR for ever; with vhost = on the kernel's ring error shows it,
# and the guest is not blamed for it) and goes on; the guest's frames are dropped and
# counted, its console still answers, and it powers off with status 0. The monitor is
# started with a descriptor it did not open (7, a file of this script's): lock-down closes it.
# net_gone CASE VHOST(on|off)
net_gone() {
	net_ok || return 0
	c=$1
	echo inherited >"$TMP/inherited-marker"
	exec 7<"$TMP/inherited-marker"
	start "$c" --set machine.vcpus=2 --set memory.size=256M --set net0.type=virtio-net \
		--set net0.tap=mvgone%d --set net0.vhost="$2"
	exec 7<&-
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'stty cols 500'
	open_fds=$(ls -l "/proc/$pid/fd" 2>/dev/null | grep -c inherited-marker)
	expect "$c" "the inherited descriptor is closed (microvm holds $open_fds)" \
		test "$open_fds" = 0
	tap=$(sed -n "s/.*net0: TAP '\([^']*\)' (created).*/\1/p" "$out" | head -n 1)
	ip addr add 192.168.104.1/24 dev "${tap:-mvgone0}"
	type_line 'ip link set eth0 up && ip addr add 192.168.104.2/24 dev eth0 && ping -c 1 -W 5 192.168.104.1 >/dev/null; echo UP-PING=$?'
	wait_for "^UP-PING=" 1 60
	expect "$c" "the guest reaches the host before" has "^UP-PING=0"
	ip link del "${tap:-mvgone0}"
	# A spinning loop would burn the whole time the guest spends on this. (With vhost the
	# kernel finds the TAP gone when the guest sends: microvm hears of it then.)
	t0=$(cpu_ticks "$pid")
	w0=$(now)
	type_line 'ping -c 3 -W 1 192.168.104.1 >/dev/null; echo GONE-PING=$? ALIVE-$((6*7))'
	wait_for "ALIVE-42" 1 60
	spent=$(($(cpu_ticks "$pid") - t0))
	wall=$(awk -v a="$w0" -v b="$(now)" 'BEGIN { printf "%d", (b - a) * 100 }')
	wait_for "TAP ${tap:-mvgone0} gone (" 1 30
	type_line 'poweroff -f'
	finish 60
	why=EPOLLERR
	[ "$2" = off ] || why="the kernel's data path lost it"
	expect "$c" "the console still answers after the TAP is gone" has "GONE-PING=1 ALIVE-42"
	expect "$c" "the event loop does not spin ($spent ticks of CPU in $wall)" \
		test "$spent" -lt $((wall / 2 + 5))
	expect "$c" "one warning names the NIC, the TAP and why ($why)" \
		test "$(grep -c "net0: TAP ${tap:-mvgone0} gone ($why): receive stopped, transmitted frames dropped" "$out")" = 1
	expect "$c" "the guest is not blamed (no DEVICE_NEEDS_RESET)" \
		sh -c "! grep -q 'device needs a reset' '$out'"
	expect "$c" "the guest's frames were dropped and counted" \
		grep -q "net0: [0-9]* transmitted frames dropped: the TAP is gone" "$out"
	expect "$c" "microvm kept running: exit 0 (got $status)" test "$status" = 0
	rm -f "$TMP/inherited-marker"
}

# Errors: a non-TAP name, and a single-queue NIC on the multi-queue TAP, exit with 2 / 1.
net_errors_case() {
	net_ok || return 0
	"$MV" --config "$machine" --set net0.type=virtio-net --set net0.tap=lo </dev/null \
		>"$TMP/neterr.out" 2>&1
	st=$?
	out=$TMP/neterr.out
	expect net-errors "a non-TAP interface is a configuration error (exit $st)" test "$st" = 2
	expect net-errors "and the message says so" has "'lo' is a network interface but not a TAP device"
	# (net-pci left the multi-queue TAP mvnet1; a run resumed here makes it.)
	[ -e /sys/class/net/mvnet1 ] || "$NETTOOL" mktap mvnet1 mq
	"$MV" --config "$machine" --set net0.type=virtio-net --set net0.tap=mvnet1 </dev/null \
		>"$TMP/neterr.out" 2>&1
	st=$?
	expect net-errors "TAP flags mismatch exits 1 (got $st)" test "$st" = 1
	expect net-errors "and names the multi_queue mismatch" has "exists with other flags"
	"$NETTOOL" deltap mvnet1 mq
	# vhost = on without /dev/vhost-net: exit 1 saying why, and the TAP it created is gone again.
	if [ -c /dev/vhost-net ]; then
		mv /dev/vhost-net "$TMP/vhost-net"
		"$MV" --config "$machine" --set net0.type=virtio-net --set net0.tap=mvnovh0 \
			--set net0.vhost=on </dev/null >"$TMP/neterr.out" 2>&1
		st=$?
		mv "$TMP/vhost-net" /dev/vhost-net
		expect net-errors "vhost = on without /dev/vhost-net exits 1 (got $st)" test "$st" = 1
		expect net-errors "and says why" has "net0: vhost = on but /dev/vhost-net cannot be used: No such file or directory (load the vhost_net module)"
		expect net-errors "and removes the TAP it created" test ! -e /sys/class/net/mvnovh0
	fi
}

# A machine with more event loop handlers than a fixed table of 64 held: 8 NICs with 2 queue
# pairs (7 handlers each: 5 kicks, 2 TAP queues) and 2 disks with 2 queues (3 each) on 2
# vCPUs, 66 handlers with the console and signals. (The same count from 16 vCPUs with a
# 16-queue disk and NIC would take many minutes to boot under nested emulation.)
many_handlers_case() {
	net_ok || return 0
	many=""
	for i in 0 1 2 3 4 5 6 7; do
		many="$many --set n$i.type=virtio-net --set n$i.tap=mvmany%d --set n$i.queues=2"
	done
	for i in 0 1; do
		dd if=/dev/zero of="$TMP/many$i.img" bs=1M count=4 2>/dev/null
		many="$many --set d$i.type=virtio-blk --set d$i.path=$TMP/many$i.img --set d$i.queues=2"
	done
	# shellcheck disable=SC2086
	start many-handlers --set machine.vcpus=2 --set memory.size=256M $many
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'stty cols 500'
	type_line 'echo NICS=$(ls -d /sys/class/net/eth* | wc -l) DISKS=$(ls -d /sys/block/vd* | wc -l) QUEUES=$(ls /sys/class/net/eth7/queues | wc -l)'
	wait_for "^NICS=" 1 60
	type_line 'poweroff -f'
	finish 60
	expect many-handlers "8 NICs with 2 queue pairs and 2 disks come up" has "^NICS=8 DISKS=2 QUEUES=4"
	expect many-handlers "exit 0 (got $status)" test "$status" = 0
	rm -f "$TMP"/many*.img
}
