# Snapshot and restore boot tests, sourced by tests/boot/cases.sh (its helpers and counters;
# ticks and wait_tick come from api-cases.sh). A guest that counts on its console with its
# uptime, sleeping on timers between lines, is paused and saved through the API (microvm
# ctl), the monitor stopped, and a new process restores it: the counter goes on from where it
# stopped, without a boot, the guest's clock never goes back, the console takes input; then
# a restored VM is saved and restored again. Clones of one snapshot draw their own random
# numbers and take their own MAC addresses. Damaged and mismatched files, and overrides a
# restore cannot make, are refused.

# snap_save NAME SOCK STATE MEM: pause the VM on SOCK, save it, stop it; sets $at (the last
# counter line before the pause), $up (its uptime), $saved (ctl's status), $status.
snap_save() {
	"$MV" ctl "$2" pause >/dev/null
	at=$(ticks)
	up=$(sed -n "s/.*TICK$at \([0-9.]*\).*/\1/p" "$out" | tail -n 1)
	"$MV" ctl "$2" snapshot "$3" "$4" >"$TMP/$1.ctl" 2>&1
	saved=$?
	"$MV" ctl "$2" stop >/dev/null 2>&1
	finish 60
}

# snap_resumed NAME: in the restored VM's output, the first counter line and its uptime.
snap_resumed() {
	first=$(grep -o 'TICK[0-9][0-9]*' "$out" | tr -d 'TICK' | sort -n | head -n 1)
	up2=$(sed -n "s/.*TICK$first \([0-9.]*\).*/\1/p" "$out" | head -n 1)
}

# crng_ready NAME: wait until the guest's random number generator is ready (a read of
# /dev/random blocks until then). Only then does a new VM generation ID reseed it and say
# so ("crng reseeded due to virtual machine fork"): a snapshot saved earlier would restore
# into clones that stay silent, or not, by how fast the guest booted.
crng_ready() {
	type_line 'head -c 1 /dev/random >/dev/null; echo CRNG-READY-$((1+1))'
	wait_for "^CRNG-READY-2" 1 120
}

# snap_base_save: boot a counting guest whose random number generator is ready, save it to
# $TMP/vm.state and vm.mem (the snapshot the snap cases start from), check the save; sets
# save_at and save_up.
snap_base_save() {
	SOCK=$TMP/snap.sock
	rm -f "$TMP/vm.state" "$TMP/vm.mem"
	start snap-save --set machine.vcpus=2 --set memory.size=256M --api-sock "$SOCK"
	wait_for "init reached" 1 180 && wait_for "microvm:/#" 1 10
	crng_ready
	type_line 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo TICK$i $(cut -d" " -f1 /proc/uptime); sleep 0.2; done &'
	wait_tick 5
	snap_save snap-save "$SOCK" "$TMP/vm.state" "$TMP/vm.mem"
	expect snap-save "PUT /snapshot/create on the paused VM: ctl exit 0 ($saved: $(head -c 300 "$TMP/snap-save.ctl"))" \
		test "$saved" = 0
	expect snap-save "the state and memory files exist" test -s "$TMP/vm.state" -a -s "$TMP/vm.mem"
	expect snap-save "the memory file has holes: $(du -k "$TMP/vm.mem" | cut -f1) KiB on disk for 256 MiB" \
		test "$(du -k "$TMP/vm.mem" | cut -f1)" -lt 262144
	expect snap-save "Stop after the snapshot: exit 4 (got $status)" test "$status" = 4
	save_at=$at save_up=$up
}

# snap_base NAME: the base snapshot for case NAME, saved by snap-restore; saved here when
# that unit ran in an attempt of a host that stalled (the host was started again, MVFROM,
# with a new /tmp) or was not chosen (MVONLY). Returns 1 (NAME failed) without one.
snap_base() {
	[ -s "$TMP/vm.state" ] || snap_base_save
	[ -s "$TMP/vm.state" ] && return 0
	result "$1" FAIL "no base snapshot to start from (saving one failed)"
	return 1
}

snap_restore_case() {
	rm -f "$TMP/vm2.state" "$TMP/vm2.mem"
	snap_base_save

	# A new process from the files alone; its API serves the restored VM.
	NOCONFIG=1 start snap-restore --restore "$TMP/vm.state" --api-sock "$SOCK" \
		--boot-report "$TMP/restore.json"
	wait_tick $((save_at + 5))
	snap_resumed
	type_line 'echo RESTORED-$((40+2))'
	wait_for "^RESTORED-42" 1 30
	info=$("$MV" ctl "$SOCK" info 2>&1)
	snap_save snap-restore "$SOCK" "$TMP/vm2.state" "$TMP/vm2.mem"
	expect snap-restore "no boot: the kernel did not start again" sh -c "! grep -q 'Booting Linux' '$out'"
	expect snap-restore "the counter goes on from where it stopped (saved at TICK$save_at, first after: TICK${first:-none})" \
		sh -c "[ -n '$first' ] && [ '$first' -ge '$save_at' ] && [ '$first' -le $((save_at + 2)) ]"
	expect snap-restore "the guest's clock does not go back (uptime $save_up s then ${up2:-none} s)" \
		awk -v a="$save_up" -v b="${up2:--1}" 'BEGIN { exit !(b >= a && b - a < 5) }'
	expect snap-restore "timers fire after the restore: the counter reached TICK$at" \
		test "${at:-0}" -ge $((save_at + 5))
	expect snap-restore "the console takes input (RESTORED-42)" has "^RESTORED-42"
	expect snap-restore "GET / says Running ($info)" sh -c "echo '$info' | grep -q '\"state\":\"Running\"'"
	expect snap-restore "a restored VM is saved again (ctl exit $saved)" test "$saved" = 0
	for ph in state_read vm_built state_restored first_kvm_run; do
		echo "MVTIME snap-restore $ph $(sed -n "s/.*\"$ph\": \([0-9.]*\).*/\1/p" "$TMP/restore.json") ms"
	done

	# The second generation, paused at start and resumed through the API.
	NOCONFIG=1 start snap-restore2 --restore "$TMP/vm2.state" --api-sock "$SOCK" --paused
	n=0
	until "$MV" ctl "$SOCK" info 2>/dev/null | grep -q Paused || [ $n -ge 300 ]; do
		n=$((n + 1))
		sleep 0.1
	done
	quiet=$(ticks)
	"$MV" ctl "$SOCK" resume >/dev/null
	wait_tick $((at + 3))
	type_line 'poweroff -f'
	finish 60
	expect snap-restore2 "--paused: no counter line before the resume (${quiet:-none})" test -z "$quiet"
	expect snap-restore2 "the snapshot of a restored VM restores: the counter goes on past TICK$at" \
		test "$(ticks)" -ge $((at + 3))
	expect snap-restore2 "the guest powers off: exit 0 (got $status)" test "$status" = 0
}

# A guest with a disk and a NIC on TRANSPORT (disk engine ENGINE, vhost VHOST) counts, writes
# 1 MiB of random data to its disk and hashes it, and reaches the host over its NIC; it is
# saved and restored: the disk reads back the same, new writes go through, the NIC reaches
# the host both ways, the counter goes on. microvm creates the TAP each time (by name: a
# restore creates it again), the host gives it its address each time.
# snap_devices_case NAME TRANSPORT ENGINE VHOST
snap_devices_case() {
	net_ok || return 0
	c=$1 tap=mvsnap0 SOCK=$TMP/snapdev.sock
	rm -f "$TMP/dev.state" "$TMP/dev.mem" "$TMP/dev.img"
	dd if=/dev/zero of="$TMP/dev.img" bs=1M count=16 2>/dev/null
	start "$c-save" --set machine.vcpus=2 --set memory.size=256M --api-sock "$SOCK" \
		--set blk0.type=virtio-blk --set blk0.path="$TMP/dev.img" --set blk0.transport="$2" \
		--set blk0.engine="$3" --set net0.type=virtio-net --set net0.tap="$tap" \
		--set net0.transport="$2" --set net0.vhost="$4"
	wait_tap "$tap" && ip addr add 192.168.104.1/24 dev "$tap"
	wait_for "init reached" 1 180 && wait_for "microvm:/#" 1 10
	type_line 'stty cols 500; dmesg -n 1'
	type_line 'ip link set eth0 up && ip addr add 192.168.104.2/24 dev eth0 && echo NET-UP'
	wait_for "^NET-UP" 1 30
	type_line 'dd if=/dev/urandom of=/dev/vda bs=64k count=16 2>/dev/null; sync; echo SUM1=$(head -c 1048576 /dev/vda | sha256sum | cut -c1-64)'
	wait_for "^SUM1=" 1 60
	type_line 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo TICK$i; sleep 0.2; done &'
	wait_tick 3
	snap_save "$c-save" "$SOCK" "$TMP/dev.state" "$TMP/dev.mem"
	sum1=$(sed -n 's/^SUM1=\([0-9a-f][0-9a-f]*\).*/\1/p' "$out" | head -n 1)
	expect "$c" "saved with the disk and the NIC on $2 (ctl exit $saved: $(head -c 200 "$TMP/$c-save.ctl"))" \
		test "$saved" = 0
	NOCONFIG=1 start "$c" --restore "$TMP/dev.state" --api-sock "$SOCK"
	wait_tap "$tap" && ip addr add 192.168.104.1/24 dev "$tap"
	wait_tick $((at + 3))
	type_line 'echo SUM2=$(head -c 1048576 /dev/vda | sha256sum | cut -c1-64)'
	wait_for "^SUM2=" 1 60
	# The host first: the TAP is new (a new MAC), and its ARP request tells the guest so.
	hostping=0
	ping -c 2 -W 5 192.168.104.2 >/dev/null 2>&1 || hostping=$?
	type_line 'dd if=/dev/urandom of=/dev/vda bs=64k count=16 seek=16 2>/dev/null; sync; echo W2=$?; ping -c 2 -W 5 192.168.104.1 >/dev/null; echo PING=$?'
	wait_for "^PING=[0-9]" 1 60
	type_line 'poweroff -f'
	finish 60
	sum2=$(sed -n 's/^SUM2=\([0-9a-f][0-9a-f]*\).*/\1/p' "$out" | head -n 1)
	expect "$c" "the disk reads back what was written before the snapshot (${sum1:-none})" \
		sh -c "[ -n '$sum1' ] && [ '$sum1' = '$sum2' ]"
	expect "$c" "a write after the restore completes" has "^W2=0"
	expect "$c" "the guest reaches the host over its NIC" has "^PING=0"
	expect "$c" "the host reaches the guest (ping $hostping)" test "$hostping" = 0
	expect "$c" "the counter goes on past TICK$at, no boot" \
		sh -c "[ \"\$(grep -o 'TICK[0-9]*' '$out' | tr -d TICK | sort -n | tail -n 1)\" -gt '$at' ] && ! grep -q 'Booting Linux' '$out'"
	expect "$c" "the guest powers off: exit 0 (got $status)" test "$status" = 0
	rm -f "$TMP/dev.state" "$TMP/dev.mem" "$TMP/dev.img"
}

# A snapshot under load: fio writes (sha256-verified, depth 256) to a virtio-pci disk on
# io_uring; 5 s in, the VM is paused (what is in flight completes), saved and stopped; the
# restored guest's fio goes on and verifies every block it had been told was written.
snap_fio_case() {
	[ -f "${TOOLS_DISK:-}" ] || { result snap-fio FAIL "no tools disk ($TOOLS_DISK) with fio"; return; }
	SOCK=$TMP/snapfio.sock
	rm -f "$TMP/fio.state" "$TMP/fio.mem"
	dd if=/dev/zero of="$TMP/fio.img" bs=1M count=16 2>/dev/null
	start snap-fio-save --set machine.vcpus=2 --set memory.size=256M --api-sock "$SOCK" \
		--set tools.type=virtio-blk --set tools.path="$TOOLS_DISK" --set tools.readonly=on \
		--set data.type=virtio-blk --set data.path="$TMP/fio.img" --set data.transport=pci \
		--set data.engine=io_uring
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'stty cols 500'
	type_line 'dev() { for d in /sys/block/vd*; do [ "$(cat $d/serial)" = $1 ] && echo /dev/${d##*/}; done; }'
	type_line 'mkdir -p /mnt && mount -o ro $(dev tools) /mnt && echo MOUNTED'
	wait_for "^MOUNTED" 1 30
	type_line 'echo FIO-START; /mnt/bin/fio --name=data --filename=$(dev data) --direct=1 --ioengine=libaio --iodepth=256 --bs=4k --size=16m --runtime=30 --time_based --rw=randwrite --verify=sha256 --verify_backlog=4096 --verify_fatal=1 --output-format=terse >/dev/null; echo FIO-W-RC=$?'
	wait_for "^FIO-START" 1 30
	sleep 5 # (when the snapshot comes does not decide the outcome: fio verifies either way)
	"$MV" ctl "$SOCK" pause >/dev/null
	"$MV" ctl "$SOCK" snapshot "$TMP/fio.state" "$TMP/fio.mem" >"$TMP/snap-fio.ctl" 2>&1
	saved=$?
	"$MV" ctl "$SOCK" stop >/dev/null 2>&1
	finish 60
	early=$(grep -c '^FIO-W-RC=' "$out")
	NOCONFIG=1 start snap-fio --restore "$TMP/fio.state"
	wait_for "^FIO-W-RC=" 1 300
	type_line "dmesg | grep -iE 'virtio|blk_update|I/O error|vd[a-z]' | grep -iE 'error|fail|reset|timeout|hung' | sed 's/^/DMESG-ERR=/'; echo DMESG-CHECKED"
	wait_for "^DMESG-CHECKED" 1 30
	type_line 'poweroff -f'
	finish 60
	expect snap-fio "saved while fio ran (ctl exit $saved, fio had not finished: $early)" \
		sh -c "[ '$saved' = 0 ] && [ '$early' = 0 ]"
	expect snap-fio "after the restore fio finished and verified every write it was told of ($(sed -n 's/^FIO-W-RC=//p' "$out" | tr -d '\r'))" \
		has "^FIO-W-RC=0"
	expect snap-fio "no virtio or I/O errors in the guest's kernel log" sh -c "! grep -q '^DMESG-ERR=' '$out'"
	expect snap-fio "exit 0 (got $status)" test "$status" = 0
	rm -f "$TMP/fio.state" "$TMP/fio.mem" "$TMP/fio.img"
}

# SNAP_CYCLES (10) snapshots and restores in a row, each of the VM the last one restored: the
# counter goes on each time and the guest's uptime never goes back. (Each cycle takes about
# 3.5 s in an emulated host: SNAP_CYCLES=N MVONLY=snap-cycles for a longer run.)
snap_cycles_case() {
	cycles=${SNAP_CYCLES:-10}
	snap_base snap-cycles || return
	SOCK=$TMP/cycles.sock
	cp "$TMP/vm.state" "$TMP/cy0.state"
	cp --sparse=always "$TMP/vm.mem" "$TMP/cy0.mem"
	last=$save_at lastup=$save_up ok=0 bad=""
	for k in $(seq "$cycles"); do
		from=$(((k - 1) % 2)) to=$((k % 2))
		NOCONFIG=1 start snap-cycle$k --restore "$TMP/cy$from.state" --api-sock "$SOCK"
		wait_tick $((last + 2))
		snap_save snap-cycle$k "$SOCK" "$TMP/cy$to.state" "$TMP/cy$to.mem"
		snap_resumed
		if [ "$saved" = 0 ] && [ "${first:-0}" -ge "$last" ] && [ "${at:-0}" -ge $((last + 2)) ] &&
			awk -v a="$lastup" -v b="${up2:--1}" 'BEGIN { exit !(b >= a) }'; then
			ok=$((ok + 1))
		else
			bad="$bad $k(saved $saved, TICK$last->${first:-none}..${at:-none}, up $lastup->${up2:-none})"
		fi
		last=${at:-$last} lastup=${up:-$lastup}
	done
	expect snap-cycles "$cycles restores, each saved again: the counter goes on, the clock never back ($ok good${bad:+; bad:$bad})" \
		test "$ok" = "$cycles"
	rm -f "$TMP"/cy[01].state "$TMP"/cy[01].mem
}

# clone2_start OUT ARGS...: a second microvm ARGS beside the one start runs, with its own
# console (clone2_line) and its output in OUT; sets $pid2.
clone2_start() {
	c2out=$1
	shift
	rm -f "$TMP/in2" "$c2out"
	mkfifo "$TMP/in2"
	"$MV" -v "$@" <"$TMP/in2" >"$c2out" 2>&1 &
	pid2=$!
	exec 4>"$TMP/in2"
}

# clone2_line LINE: type LINE on the second microvm's console.
clone2_line() { (trap '' PIPE; echo "$1" >&4) 2>/dev/null; }

# wait_line PATTERN FILE: until PATTERN is in FILE (at most 60 s).
wait_line() {
	n=0
	until grep -q -- "$1" "$2" || [ $n -ge 600 ]; do
		n=$((n + 1))
		sleep 0.1
	done
	grep -q -- "$1" "$2"
}

# clones_poweroff: both guests power off; sets $status and $status2 (their exit statuses).
clones_poweroff() {
	type_line 'poweroff -f'
	clone2_line 'poweroff -f'
	exec 4>&-
	finish 60
	n=0
	while kill -0 $pid2 2>/dev/null && [ $n -lt 600 ]; do
		n=$((n + 1))
		sleep 0.1
	done
	kill -9 $pid2 2>/dev/null
	wait $pid2
	status2=$?
	rm -f "$TMP/in2"
}

# Two clones of one snapshot at once: each gets a new VM generation ID, so each kernel
# reseeds its random number generator and they draw different numbers (with one RNG state
# they would draw the same). The second clone runs beside the first, with its own console.
snap_clones_case() {
	snap_base snap-clones || return
	clone2_start "$TMP/clone2.out" --restore "$TMP/vm.state"
	NOCONFIG=1 start snap-clone1 --restore "$TMP/vm.state"
	wait_tick $((save_at + 2))
	line='echo RND=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n")'
	type_line "$line"
	clone2_line "$line"
	wait_for "^RND=[0-9a-f]" 1 60
	wait_line "^RND=[0-9a-f]" "$TMP/clone2.out"
	# Asked of each kernel's log: on the console, the monitor's own lines can land inside it.
	line='if dmesg | grep -q "crng reseeded due to virtual machine fork"; then echo RESEED=yes; else echo RESEED=no; fi'
	type_line "$line"
	clone2_line "$line"
	wait_for "^RESEED=" 1 60
	wait_line "^RESEED=" "$TMP/clone2.out"
	r1=$(sed -n 's/^RND=\([0-9a-f][0-9a-f]*\).*/\1/p' "$out" | head -n 1)
	r2=$(sed -n 's/^RND=\([0-9a-f][0-9a-f]*\).*/\1/p' "$TMP/clone2.out" | head -n 1)
	clones_poweroff
	expect snap-clones "both clones reseed their RNG (vmgenid)" sh -c \
		"grep -q '^RESEED=yes' '$out' && grep -q '^RESEED=yes' '$TMP/clone2.out'"
	expect snap-clones "the clones draw different random numbers (${r1:-none} / ${r2:-none})" \
		sh -c "[ -n '$r1' ] && [ -n '$r2' ] && [ '$r1' != '$r2' ]"
	expect snap-clones "both power off: exit 0 and 0 (got $status and $status2)" test "$status $status2" = "0 0"
}

# Clones with their own MAC addresses. A guest with a NIC on each transport (net0 on
# virtio-mmio, net1 on PCI) runs docs/snapshot.md's re-probe: when its kernel log says the
# VM generation changed ("crng reseeded due to virtual machine fork"; Linux 6.12's vmgenid
# driver sends no uevent), it unbinds and binds each NIC from virtio_net, then gives each the
# address 192.168.L.2, L its MAC's last byte. It is saved; two clones are restored from it
# at once, each with its own TAPs and MACs (--set NIC.tap, NIC.mac), vhost on for one NIC
# and off for the other (the other way round in the second clone): after the re-probe each
# clone's NICs have the MACs it was given, under their old names, and reach the host
# (192.168.L.1 on the clone's TAP) over each. A malformed MAC is refused (exit 2).
snap_clones_net_case() {
	net_ok || return 0
	SOCK=$TMP/clonesnet.sock
	rm -f "$TMP/cn.state" "$TMP/cn.mem"
	mac=02:4d:56:00:00
	start snap-clones-net-save --set machine.vcpus=2 --set memory.size=256M --api-sock "$SOCK" \
		--set net0.type=virtio-net --set net0.tap=mvcn0 --set net0.mac=$mac:78 \
		--set net1.type=virtio-net --set net1.tap=mvcn1 --set net1.mac=$mac:79 \
		--set net1.transport=pci
	wait_for "init reached" 1 180 && wait_for "microvm:/#" 1 10
	netup='for n in /sys/class/net/eth*; do m=$(cat $n/address); i=${n##*/}; ip link set $i up; ip addr add 192.168.$((0x${m##*:})).2/24 dev $i; done'
	reprobe='cd /sys/bus/virtio/drivers/virtio_net; for d in virtio*; do echo $d >unbind; echo $d >bind; done; sh /tmp/netup; echo REPROBED'
	watch='cat /dev/kmsg | while read -r l; do case $l in *"virtual machine fork"*) sh /tmp/reprobe ;; esac; done &'
	# each NIC: NIC=NAME,TRANSPORT,MAC,PING (ping: 0 when 192.168.L.1 answered; unless $1)
	nics='for n in /sys/class/net/eth*; do m=$(cat $n/address); case $(readlink -f $n/device) in *pci*) t=pci ;; *) t=mmio ;; esac; r=-; [ -n "$1" ] || { ping -c 2 -W 5 192.168.$((0x${m##*:})).1 >/dev/null; r=$?; }; echo NIC=${n##*/},$t,$m,$r; done; echo NICS-DONE'
	type_line 'stty cols 500; dmesg -n 1'
	type_line "echo '$netup' >/tmp/netup; echo '$reprobe' >/tmp/reprobe"
	type_line "echo '$nics' >/tmp/nics"
	crng_ready
	type_line "sh /tmp/netup; $watch sleep 1; sh /tmp/nics base"
	wait_for "^NICS-DONE" 1 60
	# The names the guest gave its NICs (eth0, eth1: probe order): the clones' must be these.
	n0=$(sed -n 's/^NIC=\(eth[0-9]*\),mmio,.*/\1/p' "$out" | head -n 1)
	n1=$(sed -n 's/^NIC=\(eth[0-9]*\),pci,.*/\1/p' "$out" | head -n 1)
	"$MV" ctl "$SOCK" pause >/dev/null
	"$MV" ctl "$SOCK" snapshot "$TMP/cn.state" "$TMP/cn.mem" >"$TMP/snap-clones-net.ctl" 2>&1
	saved=$?
	"$MV" ctl "$SOCK" stop >/dev/null 2>&1
	finish 60
	expect snap-clones-net "saved with a NIC on each transport, MACs :78 and :79 ($(grep '^NIC=' "$out" | tr -d '\r' | tr '\n' ' ')ctl exit $saved)" \
		sh -c "[ '$saved' = 0 ] && grep -q '^NIC=$n0,mmio,$mac:78,-' '$out' && grep -q '^NIC=$n1,pci,$mac:79,-' '$out'"
	[ "$saved" = 0 ] || return

	# Clone B beside clone A, with its own console.
	outb=$TMP/snap-clone-b.out
	clone2_start "$outb" --restore "$TMP/cn.state" --set net0.tap=mvcb0 --set net0.mac=$mac:7c \
		--set net0.vhost=off --set net1.tap=mvcb1 --set net1.mac=$mac:7d --set net1.vhost=on
	NOCONFIG=1 start snap-clone-a --restore "$TMP/cn.state" --set net0.tap=mvca0 \
		--set net0.mac=$mac:7a --set net0.vhost=on --set net1.tap=mvca1 --set net1.mac=$mac:7b \
		--set net1.vhost=off
	for t in mvca0:122 mvca1:123 mvcb0:124 mvcb1:125; do
		wait_tap "${t%:*}" && ip addr add "192.168.${t#*:}.1/24" dev "${t%:*}"
	done
	wait_for "^REPROBED" 1 120
	type_line 'sh /tmp/nics'
	wait_line "^REPROBED" "$outb" && clone2_line 'sh /tmp/nics'
	wait_for "^NICS-DONE" 1 60
	wait_line "^NICS-DONE" "$outb"
	clones_poweroff
	for c in a:$out:7a:7b b:$outb:7c:7d; do
		name=${c%%:*} rest=${c#*:}
		f=${rest%%:*} rest=${rest#*:}
		m0=$mac:${rest%:*} m1=$mac:${rest#*:}
		got=$(grep '^NIC=' "$f" | tr -d '\r' | tr '\n' ' ')
		out=$f
		expect snap-clones-net "clone $name: after the re-probe $n0 (mmio) is $m0, $n1 (pci) $m1, each reaches the host (${got:-nothing})" \
			sh -c "grep -q '^REPROBED' '$f' && grep -q '^NIC=$n0,mmio,$m0,0' '$f' && grep -q '^NIC=$n1,pci,$m1,0' '$f'"
		expect snap-clones-net "clone $name: no device needed a reset" sh -c "! grep -q 'needs a reset' '$f'"
	done
	expect snap-clones-net "both clones power off: exit 0 and 0 (got $status and $status2)" \
		test "$status $status2" = "0 0"
	# (bounded: a restore that took the MAC would run on, its console at end of file)
	timeout 60 "$MV" --restore "$TMP/cn.state" --set net0.mac=02:4d:56:00:00:zz </dev/null \
		>"$TMP/cn-bad.out" 2>&1
	st=$?
	out=$TMP/cn-bad.out
	expect snap-clones-net "a malformed MAC is refused: exit 2 (got $st)" \
		sh -c "[ $st = 2 ] && grep -q 'is not a unicast MAC address' '$out'"
	rm -f "$TMP/cn.state" "$TMP/cn.mem"
}

# snap_refused NAME WHY ARGS...: microvm ARGS exits 2 with a message matching WHY (bounded:
# a restore that was not refused would run the guest on).
snap_refused() {
	c=$1 why=$2
	shift 2
	timeout 60 "$MV" "$@" </dev/null >"$TMP/$c.out" 2>&1
	st=$?
	expect snap-bad "$c: exit 2 (got $st), says '$why' ($(head -c 200 "$TMP/$c.out"))" \
		sh -c "[ $st = 2 ] && grep -q -- '$why' '$TMP/$c.out'"
}

snap_bad_case() {
	snap_base snap-bad || return
	size=$(wc -c <"$TMP/vm.state")
	head -c $((size / 2)) "$TMP/vm.state" >"$TMP/bad-trunc.state"
	cp "$TMP/vm.state" "$TMP/bad-flip.state"
	# Every bit of one byte flipped (writing a fixed value would change nothing where the
	# byte already had it).
	b=$(od -An -tu1 -j $((size - 10)) -N1 "$TMP/vm.state" | tr -d ' ')
	printf "\\$(printf %o $((255 - b)))" |
		dd of="$TMP/bad-flip.state" bs=1 seek=$((size - 10)) conv=notrunc 2>/dev/null
	head -c 1000 /dev/urandom >"$TMP/bad-junk.state"
	cp "$TMP/vm.mem" "$TMP/short.mem"
	truncate -s 64M "$TMP/short.mem"
	snap_refused truncated "truncated" --restore "$TMP/bad-trunc.state" --mem-file "$TMP/vm.mem"
	snap_refused flipped "checksum" --restore "$TMP/bad-flip.state" --mem-file "$TMP/vm.mem"
	snap_refused junk "not a microvm snapshot" --restore "$TMP/bad-junk.state"
	snap_refused short-mem "bytes; the snapshot" --restore "$TMP/vm.state" --mem-file "$TMP/short.mem"
	snap_refused no-mem "No such file" --restore "$TMP/vm.state" --mem-file "$TMP/nope.mem"
	snap_refused changed-ram "cannot change" --restore "$TMP/vm.state" --set memory.size=512M
	snap_refused uart-mac "uart0.mac=02:00:00:00:00:01: a restore cannot change this" \
		--restore "$TMP/vm.state" --set uart0.mac=02:00:00:00:00:01
	snap_refused with-config "no --config" --restore "$TMP/vm.state" --config "$machine"
	rm -f "$TMP/bad-"*.state "$TMP/short.mem"
}
