# Control API boot tests, sourced by tests/boot/cases.sh (its helpers and counters): the
# Firecracker getting-started sequence with curl, errors after the start, a stalled client
# beside 100 parallel ones, the sandbox with the API on, pause and resume of a guest that
# counts, and their latency. Needs root and /dev/net/tun (the NIC's TAP).

# api NAME METHOD PATH [JSON]: one request with curl; prints "MVAPI NAME METHOD PATH -> CODE"
# and the reply into the case's output (the transcript), sets $code and $reply.
api() {
	an=$1
	shift
	if [ $# -ge 3 ]; then
		reply=$(curl -sS --max-time 30 --unix-socket "$SOCK" -X "$1" "http://localhost$2" \
			-H 'Accept: application/json' -H 'Content-Type: application/json' -d "$3" \
			-w '\n%{http_code}' 2>&1)
	else
		reply=$(curl -sS --max-time 30 --unix-socket "$SOCK" -X "$1" "http://localhost$2" \
			-H 'Accept: application/json' -w '\n%{http_code}' 2>&1)
	fi
	code=$(echo "$reply" | tail -n 1)
	reply=$(echo "$reply" | sed '$d')
	# Into the log, not the console's file (microvm writes that at its own offset).
	echo "MVAPI $an curl --unix-socket $SOCK -X $1 http://localhost$2${3:+ -d '$3'}"
	echo "MVAPI $an -> $code ${reply}"
}

# The guest's counter (api_pause_case): the highest TICK number printed so far.
ticks() { grep -o 'TICK[0-9][0-9]*' "$out" | tr -d 'TICK' | sort -n | tail -n 1; }
# wait_tick N: until the counter reaches N (at most 30 s, or the monitor ends).
wait_tick() {
	n=0
	# (the counter read once a round: between two reads the first line may come)
	while t=$(ticks); [ -z "$t" ] || [ "$t" -lt "$1" ]; do
		n=$((n + 1))
		[ $n -lt 300 ] && kill -0 $pid 2>/dev/null || return 1
		sleep 0.1
	done
}

# wait_sock: until the socket answers GET / (the monitor is up), at most 30 s.
wait_sock() {
	n=0
	until curl -s --max-time 2 --unix-socket "$SOCK" http://localhost/ >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -lt 300 ] && kill -0 $pid 2>/dev/null || return 1
		sleep 0.1
	done
}

api_getting_started_case() {
	if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ]; then
		echo "MVTEST api SKIP needs root and /dev/net/tun (not counted)"
		return
	fi
	kernel=$GUEST/Image
	args="panic=-1 init=/init"
	if [ "$HOSTKIND" = x86 ]; then
		kernel=$GUEST/bzImage
		args="console=ttyS0 panic=-1 init=/init"
	fi
	cp "$GUEST/rootfs.ext4" "$TMP/api-root.ext4"
	# A named VM: its socket is in the runtime directory, and microvm ctl finds it by name.
	SOCK=/run/microvm/api-test.sock
	mkdir -p /run
	NOCONFIG=1
	start api-start --name api-test
	NOCONFIG=
	if ! wait_sock; then
		finish 5
		result api-start FAIL "no API socket at $SOCK"
		show
		return
	fi
	api api-start GET /
	before=$reply
	api api-start PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"boot_args\": \"$args\"}"
	c1=$code
	api api-start PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$TMP/api-root.ext4\", \"is_root_device\": true, \"is_read_only\": false}"
	c2=$code
	api api-start PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
	c3=$code
	api api-start PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "mvapi%d", "guest_mac": "06:00:ac:10:00:02"}'
	c4=$code
	# A refused field is named; nothing changes.
	api api-start PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256, "smt": true}'
	smt="$code $reply"
	api api-start PUT /actions '{"action_type": "InstanceStart"}'
	c5=$code
	expect api-start "before the start: state Not started" \
		sh -c "echo '$before' | grep -q '\"state\":\"Not started\"'"
	expect api-start "boot-source, drives/rootfs, machine-config, network-interfaces, InstanceStart: 204 each ($c1 $c2 $c3 $c4 $c5)" \
		test "$c1 $c2 $c3 $c4 $c5" = "204 204 204 204 204"
	expect api-start "smt: true is refused by name ($smt)" \
		sh -c "echo '$smt' | grep -q '^400 .*smt: not supported'"
	wait_for "init reached" 1 180 && wait_for "microvm:/#" 1 10
	type_line 'echo CPUS=$(nproc)'
	type_line "echo MEM=\$(sed -n 's/MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
	# / must be the ext4 on vda: the root mount's device number is vda's.
	type_line 'echo ROOT=$(mount | grep " on / " | cut -d" " -f5),$(grep " / / " /proc/self/mountinfo | tail -n 1 | cut -d" " -f3),$(cat /sys/block/vda/dev)'
	type_line 'echo MAC=$(cat /sys/class/net/eth0/address)'
	wait_for "^MAC=" 1 30
	api api-run GET /
	running=$reply
	api api-run GET /vm/config
	vmcfg=$reply
	list=$("$MV" ctl list 2>&1)
	echo "$list" | sed 's/^/MVAPI ctl list: /'
	# Errors after the start: refused, the VM goes on.
	api api-run PUT /drives/late '{"drive_id": "late", "path_on_host": "/dev/null", "is_root_device": false}'
	e1=$code
	api api-run PUT /actions '{"action_type": "InstanceStart"}'
	e2=$code
	api api-run PATCH /vm '{"state": "Sleeping"}'
	e3=$code
	api api-run PUT /actions '{bad json'
	e4=$code
	api api-run GET /no/such/thing
	e5=$code
	type_line 'echo STILL-$((6*7))'
	wait_for "^STILL-42" 1 30
	memkb=$(sed -n 's/^MEM=\([0-9]*\).*/\1/p' "$out" | head -n 1)
	expect api-start "the guest sees the 2 vCPUs it was given" has "^CPUS=2"
	expect api-start "the guest sees ~256 MiB (MemTotal ${memkb:-?} kB)" \
		test "${memkb:-0}" -gt $((256 * 1024 * 85 / 100)) -a "${memkb:-0}" -le $((256 * 1024))
	root=$(sed -n 's/^ROOT=\(.*\)/\1/p' "$out" | tr -d '\r' | head -n 1)
	expect api-start "the root file system is the ext4 on /dev/vda (${root:-?})" \
		sh -c "echo '$root' | awk -F, '\$1 == \"ext4\" && \$2 == \$3 && \$2 ~ /:/ { ok = 1 } END { exit !ok }'"
	expect api-start "eth0 has the MAC it was given" has "^MAC=06:00:ac:10:00:02"
	expect api-start "GET / says Running" sh -c "echo '$running' | grep -q '\"state\":\"Running\"'"
	expect api-start "GET /vm/config lists the root drive and eth0" \
		sh -c "echo '$vmcfg' | grep -q '\"drive_id\":\"rootfs\".*\"is_root_device\":true' && echo '$vmcfg' | grep -q '\"iface_id\":\"eth0\"'"
	expect api-start "microvm ctl list names api-test, Running" \
		sh -c "echo '$list' | grep -q '^api-test  *Running'"
	expect api-start "after the start: a drive, InstanceStart, a bad state, bad JSON, a bad path are 400 ($e1 $e2 $e3 $e4 $e5)" \
		test "$e1 $e2 $e3 $e4 $e5" = "400 400 400 400 400"
	expect api-start "the guest runs on after the refused requests" has "^STILL-42"

	# A client that sends half a request and stalls, beside 100 at once: the 100 are
	# answered, the stalled one is cut off at its deadline, the guest runs on.
	"${NETTOOL:-nettool}" stall "$SOCK" >"$TMP/stall.out" 2>&1 &
	stalled=$!
	i=0
	pids=""
	while [ $i -lt 100 ]; do
		curl -s --max-time 60 --unix-socket "$SOCK" http://localhost/ \
			-o /dev/null -w '%{http_code}\n' >"$TMP/par.$i" 2>&1 &
		pids="$pids $!"
		i=$((i + 1))
	done
	# shellcheck disable=SC2086
	wait $pids
	ok=$(cat "$TMP"/par.* 2>/dev/null | grep -c '^200$')
	rm -f "$TMP"/par.*
	wait $stalled
	stall_status=$?
	cat "$TMP/stall.out"
	stall_s=$(sed -n 's/.* after \([0-9]*\).* s$/\1/p' "$TMP/stall.out")
	type_line 'echo ALIVE-$((7*7))'
	wait_for "^ALIVE-49" 1 30
	expect api-start "100 parallel clients beside a stalled one: $ok answered 200" test "$ok" = 100
	# Half a request, then silence: the server's deadline is 5 s from its first byte.
	expect api-start "the stalled client was cut off by the server after ${stall_s:-?} s (nettool stall exit $stall_status)" \
		sh -c "[ '$stall_status' = 0 ] && [ '${stall_s:-0}' -ge 4 ]"
	expect api-start "the guest runs on" has "^ALIVE-49"

	# The sandbox with the API: every thread filtered, the main one serving the socket.
	threads=$(tasks_with $pid "Seccomp:[[:space:]]*2")
	sockmode=$(stat -c '%a %U' "$SOCK")
	expect api-start "every thread has a seccomp filter with the API on: $threads" \
		sh -c "[ '${threads%/*}' = '${threads#*/}' ] && [ '${threads%/*}' -ge 4 ]"
	expect api-start "the socket is mode 600, root's ($sockmode)" test "$sockmode" = "600 root"

	"$MV" ctl api-test stop >"$TMP/ctl.out" 2>&1
	ctl=$?
	sed 's/^/MVAPI ctl stop: /' "$TMP/ctl.out"
	finish 60
	expect api-start "microvm ctl api-test stop: exit 0 ($ctl), microvm exits 4 ($status)" \
		test "$ctl $status" = "0 4"
	rm -f "$TMP/api-root.ext4"
}

# The guest prints a counter; PATCH /vm Paused stops it (no new line for 3 s), Resumed goes on
# from where it stopped; 20 more pauses and resumes give the latency (request to all vCPUs
# parked and devices stopped, and back). A VM started from a file (--config) with --api-sock.
api_pause_case() {
	SOCK=$TMP/api-pause.sock
	start api-pause --set machine.vcpus=2 --set memory.size=256M --api-sock "$SOCK"
	wait_for "init reached" 1 180 && wait_for "microvm:/#" 1 10
	api api-pause PUT /boot-source '{"kernel_image_path": "/nope"}'
	preboot=$code
	type_line 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo TICK$i; sleep 0.2; done &'
	wait_tick 5
	api api-pause PATCH /vm '{"state": "Paused"}'
	pc=$code
	api api-pause GET /
	pstate=$reply
	at=$(ticks)
	sleep 3 # the guest would print 15 lines meanwhile
	later=$(ticks)
	api api-pause PATCH /vm '{"state": "Resumed"}'
	rc=$code
	wait_tick $((later + 2))
	# From where it stopped: every number from 1 on, once, none skipped.
	# (one snapshot of the output: the guest goes on printing meanwhile)
	all=$(grep -o 'TICK[0-9][0-9]*' "$out" | tr -d 'TICK' | sort -nu)
	seen=$(echo "$all" | wc -l)
	top=$(echo "$all" | tail -n 1)
	expect api-pause "pre-boot resources answer 400 on a VM from a file ($preboot)" test "$preboot" = 400
	expect api-pause "Paused: 204 ($pc), GET / says Paused" \
		sh -c "[ '$pc' = 204 ] && echo '$pstate' | grep -q '\"state\":\"Paused\"'"
	expect api-pause "no counter line for 3 s while paused ($at then $later; one in flight allowed)" \
		test "$later" -le $((at + 1))
	expect api-pause "Resumed: 204 ($rc), the counter goes on from where it stopped (TICK1-TICK$top, $seen distinct)" \
		sh -c "[ '$rc' = 204 ] && [ '$top' -gt '$later' ] && [ '$seen' = '$top' ]"
	# 20 more, each once the guest has printed again (it is running).
	i=0
	while [ $i -lt 20 ]; do
		n=$(ticks)
		curl -s --unix-socket "$SOCK" -X PATCH http://localhost/vm -d '{"state": "Paused"}' >/dev/null
		curl -s --unix-socket "$SOCK" -X PATCH http://localhost/vm -d '{"state": "Resumed"}' >/dev/null
		wait_tick $((n + 1))
		i=$((i + 1))
	done
	lat=$("$MV" ctl "$SOCK" machine | sed -n 's/.*"latency_ns":\(.*\)}$/\1/p')
	echo "MVAPI api-pause latency_ns $lat"
	for what in pause resume; do
		# the last 20 of each, in microseconds: median and max
		echo "$lat" | sed -n "s/.*\"$what\":\[\([0-9,]*\)\].*/\1/p" | tr ',' '\n' | tail -n 20 |
			sort -n | awk -v w="$what" -v h="$HOSTKIND" '{ v[NR] = $1 } END {
				if (NR) printf "MVTIME api-%s-latency %s host: median %.0f us, max %.0f us (%d)\n",
					w, h, (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2000, v[NR] / 1000, NR }'
	done >"$TMP/lat"
	cat "$TMP/lat"
	expect api-pause "20 pause/resume cycles measured" \
		sh -c "grep -q 'MVTIME api-pause-latency .*(20)' '$TMP/lat' && grep -q 'MVTIME api-resume-latency .*(20)' '$TMP/lat'"
	type_line 'kill %1; poweroff -f'
	finish 60
	expect api-pause "exit 0 (got $status)" test "$status" = 0
}
