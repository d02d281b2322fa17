# virtio-vsock boot tests, sourced by tests/boot/cases.sh (its helpers and counters; net_data
# and mbps from net-cases.sh). The guest's side is nettool's vsock modes, the host's its Unix
# socket modes: "uds-send" speaks the device's CONNECT protocol on uds_path, guest
# connections to host port P reach "uds-recv"/"uds-many"/"uds-hold" on "<uds_path>_P".

# wait_sock PATH: a host program's Unix socket is there (it listens), 10 s at most
wait_sock() {
	n=0
	while [ ! -S "$1" ] && [ $n -lt 100 ]; do
		n=$((n + 1))
		sleep 0.1
	done
}

# vsock_boot NAME TRANSPORT: boot with vsock0 (CID 3) on TRANSPORT, its socket $TMP/NAME.sock
vsock_boot() {
	vs=$TMP/$1.sock
	start "$1" --set machine.vcpus=2 --set memory.size=256M --set vsock0.type=virtio-vsock \
		--set vsock0.cid=3 --set vsock0.uds_path="$vs" --set vsock0.transport="$2"
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'stty cols 500' # typed lines must not wrap: output is matched at line starts
	type_line 'dmesg -n 1'
	type_line 'echo VSOCKDRV=$(ls -d /sys/bus/virtio/drivers/vmw_vsock_virtio_transport/virtio* 2>/dev/null | wc -l)'
	wait_for "^VSOCKDRV=" 1 30
	expect "$1" "the guest's vsock driver bound the device" has "^VSOCKDRV=1"
}

# vsock_streams NAME: STREAM_MIB MiB each way, sha256-checked; the CONNECT session's answer shown
vsock_streams() {
	c=$1
	net_data
	# host -> guest: the host program speaks the protocol, the guest hashes what arrives
	type_line "nettool vsock-recv 5001 | sha256sum | sed 's/^/H2G=/'"
	wait_for "nettool listening on 5001" 1 30
	timeout 300 "$NETTOOL" uds-send "$vs" 5001 <"$TMP/stream.bin" 2>"$TMP/vh2g.log"
	wait_for "H2G=[0-9a-f]\{64\}" 1 300
	h2g=$(grep -a -o "H2G=[0-9a-f]\{64\}" "$out" | tail -n 1)
	echo "MVTRACE $c host: CONNECT 5001 -> $(sed -n 's/^nettool: CONNECT 5001: //p' "$TMP/vh2g.log")"
	expect "$c" "the host's CONNECT 5001 was answered OK <port>" grep -q "CONNECT 5001: OK [0-9]" "$TMP/vh2g.log"
	expect "$c" "$STREAM_MIB MiB host -> guest over vsock arrive intact (sha256; $(grep -a -o 'nettool received [0-9]* bytes' "$out" | tail -n 1))" \
		test "$h2g" = "H2G=$stream_sum"
	# guest -> host: the guest connects to CID 2 port 5002, which is "<uds_path>_5002"
	timeout 300 "$NETTOOL" uds-recv "${vs}_5002" >"$TMP/vg2h.bin" 2>"$TMP/vg2h.log" &
	rpid=$!
	wait_sock "${vs}_5002"
	type_line "nettool vsock-send 2 5002 $STREAM_MIB; echo G2H-DONE=\$?"
	wait_for "^G2H-DONE=[0-9]" 1 300
	wait $rpid
	expect "$c" "$STREAM_MIB MiB guest -> host over vsock arrive intact (sha256; $(wc -c <"$TMP/vg2h.bin") bytes)" \
		test "$(sha256sum <"$TMP/vg2h.bin" | cut -d' ' -f1)" = "$PATTERN_SUM"
	expect "$c" "the guest's sender ended well" has "^G2H-DONE=0"
	rm -f "$TMP/vg2h.bin"
	# host -> guest without hashing in the guest, for the throughput figure
	type_line "nettool vsock-recv 5003 >/dev/null"
	wait_for "nettool listening on 5003" 1 30
	timeout 300 "$NETTOOL" uds-send "$vs" 5003 "$STREAM_MIB" 2>"$TMP/vh2g.log"
	wait_for "nettool received" 2 60
	echo "MVTIME $c vsock host-to-guest $(mbps "$TMP/vh2g.log" sent) MB/s ($STREAM_MIB MiB, nettool)"
	echo "MVTIME $c vsock guest-to-host $(mbps "$TMP/vg2h.log" received) MB/s ($STREAM_MIB MiB, nettool)"
}

# Streams both ways, 500 connections, a host reader that never reads, nothing listening.
vsock_mmio_case() {
	c=vsock-mmio
	vsock_boot $c mmio
	vsock_streams $c
	# A host listener that never reads: the guest's writer blocks, nothing else does.
	timeout 600 "$NETTOOL" uds-hold "${vs}_5004" 2>"$TMP/vhold.log" &
	hpid=$!
	wait_sock "${vs}_5004"
	type_line "nettool vsock-send 2 5004 64 & WRITER=\$!; echo WRITER=\$WRITER"
	n=0
	while ! grep -q "holding a connection" "$TMP/vhold.log" && [ $n -lt 300 ]; do
		n=$((n + 1))
		sleep 0.1
	done
	# 500 connections opened and closed beside it, one after the other.
	timeout 300 "$NETTOOL" uds-many "${vs}_5003" 500 2>"$TMP/vmany.log" &
	mpid=$!
	wait_sock "${vs}_5003"
	type_line "nettool vsock-many 2 5003 500; echo MANY-DONE=\$?"
	wait_for "^MANY-DONE=[0-9]" 1 300
	wait $mpid
	expect "$c" "500 connections opened and closed beside the stalled one" has "^MANY-DONE=0"
	expect "$c" "the host accepted all 500" grep -q "accepted 500" "$TMP/vmany.log"
	type_line 'kill -0 $WRITER && echo WRITER-BLOCKED; echo console-$((6*7))'
	wait_for "^console-42" 1 30
	expect "$c" "the writer to the host that never reads is still blocked" has "^WRITER-BLOCKED"
	expect "$c" "the console still answers" has "^console-42"
	kill $hpid 2>/dev/null
	wait $hpid 2>/dev/null
	# The holder is gone: the stalled writer is reset and ends.
	type_line 'wait $WRITER; echo WRITER-END=$?'
	wait_for "^WRITER-END=" 1 60
	expect "$c" "the stalled writer ended once the host's side closed" has "^WRITER-END=[1-9]"
	# Nothing listens on host port 5999: the guest's connect is reset.
	type_line "NETTOOL_ONCE=1 nettool vsock-send 2 5999 1; echo NOHOST=\$?"
	wait_for "^NOHOST=" 1 60
	expect "$c" "a guest connection to a host port nothing listens on fails" has "^NOHOST=1"
	# Nothing listens on guest port 5998: the host connection is closed, no OK.
	NETTOOL_ONCE=1 timeout 60 "$NETTOOL" uds-send "$vs" 5998 1 2>"$TMP/vnog.log"
	st=$?
	expect "$c" "a host CONNECT to a guest port nothing listens on fails (exit $st: $(tr '\n' ' ' <"$TMP/vnog.log"))" \
		sh -c "[ $st = 1 ] && grep -q \"CONNECT 5998 answered ''\" '$TMP/vnog.log'"
	type_line 'poweroff -f'
	finish 60
	expect "$c" "exit 0 (got $status)" test "$status" = 0
	expect "$c" "the exit report counts the connections" has "vsock0: [0-9]* connections"
}

# On virtio-pci (MSI-X): the streams both ways.
vsock_pci_case() {
	c=vsock-pci
	vsock_boot $c pci
	vsock_streams $c
	type_line 'poweroff -f'
	finish 60
	expect "$c" "exit 0 (got $status)" test "$status" = 0
}

# vsockpoke (tests/boot/vsockpoke.c) drives vsock0 on virtio-mmio itself, the kernel's driver
# unbound: a REQUEST nothing listens for (RST), one the host holds (RESPONSE) and data past
# the credit on it (RST), packets with wrong CIDs, an unknown op or type, a len past the
# descriptors or a short header, a flood of 2000 REQUESTs with the receive queue unread (the
# RST queue is bounded: the monitor's RSS must stay put), and a receive buffer too small for a
# header (DEVICE_NEEDS_RESET, cleared by a reset). Then the kernel's driver, bound again,
# carries a guest -> host stream.
vsock_poke_case() {
	c=vsock-poke
	vs=$TMP/$c.sock
	# (the monitor's warnings apart: they would split result lines)
	ERR=$TMP/$c.err
	start $c --set memory.size=256M --set vsock0.type=virtio-vsock --set vsock0.cid=3 \
		--set vsock0.uds_path="$vs"
	ERR=""
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	# (another socket path: the running monitor's is not touched)
	"$MV" --config "$machine" --set memory.size=256M --set vsock0.type=virtio-vsock \
		--set vsock0.cid=3 --set vsock0.uds_path="$TMP/vsock-check.sock" --check \
		>"$TMP/vsockpoke-check.out" 2>&1
	base=$(sed -n 's/.*virtio-vsock cid 3.*virtio-mmio at \(0x[0-9a-f]*\),.*/\1/p' "$TMP/vsockpoke-check.out")
	type_line 'stty cols 500'
	type_line 'dmesg -n 1; for d in /sys/bus/virtio/devices/*; do [ "$(cat $d/device)" = 0x0013 ] && v=${d##*/}; done; echo $v >/sys/bus/virtio/drivers/vmw_vsock_virtio_transport/unbind && echo UNBOUND'
	wait_for "^UNBOUND" 1 30
	timeout 600 "$NETTOOL" uds-hold "${vs}_6000" 2>"$TMP/vphold.log" &
	hpid=$!
	wait_sock "${vs}_6000"
	rss0=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	type_line "vsockpoke ${base:-0x0a000000} 6000 6001"
	wait_for "^VSOCKPOKE-DONE" 1 180
	rss1=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	kill $hpid 2>/dev/null
	wait $hpid 2>/dev/null
	echo "MVTRACE $c monitor RSS ${rss0:-?} kB before vsockpoke, ${rss1:-?} kB after"
	grep -a '^[A-Z-]*=' "$out" | grep -v '^UNBOUND' | sed "s/^/MVTRACE $c guest: /"
	# The kernel's driver again: a guest -> host stream through the same device.
	timeout 120 "$NETTOOL" uds-recv "${vs}_5002" >"$TMP/vpg2h.bin" 2>"$TMP/vpg2h.log" &
	rpid=$!
	wait_sock "${vs}_5002"
	type_line 'echo $v >/sys/bus/virtio/drivers/vmw_vsock_virtio_transport/bind; echo REBOUND=$(ls -d /sys/bus/virtio/drivers/vmw_vsock_virtio_transport/virtio* 2>/dev/null | wc -l)'
	wait_for "^REBOUND=" 1 30
	type_line "nettool vsock-send 2 5002 4; echo G2H-DONE=\$?"
	wait_for "^G2H-DONE=[0-9]" 1 120
	wait $rpid
	type_line 'poweroff -f'
	finish 60
	grep -a 'vsock0: \|needs a reset' "$TMP/$c.err" | sed "s/^/MVTRACE $c monitor: /"
	expect $c "the device's config says CID 3" has "^CID=3"
	expect $c "a REQUEST to a host port nothing listens on: RST, ports right" has "^NOLISTEN-RST=1"
	expect $c "a REQUEST to a host port held: RESPONSE, 256 KiB of credit" \
		has "^LISTEN-RESPONSE=1 BUF-ALLOC=262144"
	expect $c "data past the credit: RST, no reset needed" has "^CREDIT-RST=1 NEEDS-RESET=0"
	expect $c "wrong CIDs, len past the descriptors, a short header: dropped; unknown op and type: RST" \
		has "^BAD-REPLIES=RST:1102,RST:1103,RST:1106 NEEDS-RESET=0"
	expect $c "the flood of 2000 REQUESTs was taken" has "^FLOOD-SENT=2000"
	expect $c "after the flood: only its RSTs, then the next REQUEST's, no reset needed" \
		has "^FLOOD-RST=[0-9]* FLOOD-OTHER=0 FLOOD-AFTER-RST=1 NEEDS-RESET=0"
	frst=$(sed -n 's/^FLOOD-RST=\([0-9]*\) .*/\1/p' "$out" | tail -n 1)
	lost=$(sed -n 's/.*vsock0: [0-9]* connections, [0-9]* resets sent, \([0-9]*\) lost.*/\1/p' "$TMP/$c.err")
	expect $c "the RST queue is bounded: $frst RSTs arrived, ${lost:-?} lost (counted), 2000 in all" \
		sh -c "[ '${lost:-0}' -gt 0 ] && [ $((${frst:-0} + ${lost:-0})) = 2000 ]"
	expect $c "the monitor's RSS grew by less than 8 MiB (${rss0:-?} kB -> ${rss1:-?} kB)" \
		sh -c "[ -n '$rss0' ] && [ -n '$rss1' ] && [ $((${rss1:-0} - ${rss0:-0})) -lt 8192 ]"
	expect $c "a receive buffer too small for a header sets DEVICE_NEEDS_RESET" \
		has "^SMALL-NEEDS-RESET=1"
	expect $c "a reset clears it" has "^RESET-STATUS=0"
	expect $c "after the reset the device answers again" has "^AFTER-RESET-RST=1 NEEDS-RESET=0"
	expect $c "the monitor said why the small buffer needs a reset" \
		test "$(grep -c 'rx queue: a buffer without room for a header.*device needs a reset' "$TMP/$c.err")" = 1
	expect $c "the exit report: 5 packets dropped, 1 credit violation" \
		grep -q "vsock0: .* 5 packets dropped, 1 credit violations" "$TMP/$c.err"
	expect $c "the kernel's driver bound again" has "^REBOUND=1"
	expect $c "then 4 MiB guest -> host arrive ($(wc -c <"$TMP/vpg2h.bin") bytes)" \
		sh -c "grep -q '^G2H-DONE=0' '$out' && [ $(wc -c <"$TMP/vpg2h.bin") = 4194304 ]"
	expect $c "exit 0 (got $status)" test "$status" = 0
	rm -f "$TMP/vpg2h.bin"
}
