# Sandbox boot tests, sourced by tests/boot/cases.sh (its helpers and counters); every other
# case runs with the sandbox on too (the default). Needs root, /dev/net/tun and the user
# mvuser (uid 1000) that the emulated host has.
NETTOOL=${NETTOOL:-nettool}

# tasks_with PID LINE: how many of PID's threads have LINE in their status, and of how many
tasks_with() {
	all=0
	hit=0
	for t in /proc/$1/task/*; do
		all=$((all + 1))
		grep -q "^$2\$" "$t/status" 2>/dev/null && hit=$((hit + 1))
	done
	echo "$hit/$all"
}

# leaky_fds PID: descriptors past stdio without O_CLOEXEC (flags in octal, 02000000)
leaky_fds() {
	for f in /proc/$1/fdinfo/*; do
		n=${f##*/}
		[ "$n" -le 2 ] && continue
		flags=$(sed -n 's/^flags:[[:space:]]*//p' "$f")
		[ $((0$flags & 02000000)) = 0 ] && printf '%s ' "$n"
	done
}

sandbox_cases() {
	if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ] || ! grep -q '^mvuser:' /etc/passwd; then
		echo "MVTEST sandbox SKIP needs root, /dev/net/tun and the user mvuser (not counted)"
		return
	fi
	head -c 4194304 /dev/zero >"$TMP/sb.img"
	chmod 600 "$TMP/sb.img" # root's: opened before the drop, used after it
	# Started as root with --user: the TAP is created, the disk and /dev/kvm opened, then
	# microvm becomes mvuser. A sync-engine disk adds the blk worker thread; the console
	# strips control sequences.
	start sandbox-on --user mvuser --set machine.vcpus=2 --set memory.size=256M \
		--set sb.type=virtio-blk --set sb.path="$TMP/sb.img" --set sb.engine=sync \
		--set net0.type=virtio-net --set net0.tap=mvsb%d --set uart0.sanitize=on
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	threads=$(tasks_with $pid "Seccomp:[[:space:]]*2")
	nnp=$(tasks_with $pid "NoNewPrivs:[[:space:]]*1")
	uids=$(tasks_with $pid "Uid:[[:space:]]*1000[[:space:]]*1000[[:space:]]*1000[[:space:]]*1000")
	gids=$(tasks_with $pid "Gid:[[:space:]]*1000[[:space:]]*1000[[:space:]]*1000[[:space:]]*1000")
	groups=$(sed -n 's/^Groups:[[:space:]]*//p' /proc/$pid/status | tr -d ' ')
	leaks=$(leaky_fds $pid)
	nofile=$(sed -n 's/^Max open files *\([0-9]*\) *\([0-9]*\).*/\1 \2/p' /proc/$pid/limits)
	nfds=$(ls /proc/$pid/fd | wc -l)
	tap=$(sed -n "s/.*net0: TAP '\([^']*\)' (created).*/\1/p" "$out" | head -n 1)
	type_line 'dev() { for d in /sys/block/vd*; do [ "$(cat $d/serial)" = $1 ] && echo /dev/${d##*/}; done; }'
	type_line 'yes sandboxed-data | head -c 1048576 | dd of=$(dev sb) bs=64k conv=fsync 2>/dev/null && echo SB-SYNCED'
	type_line 'ip link set eth0 up && echo LINK=$(cat /sys/class/net/eth0/operstate)'
	type_line "printf 'X\\033]0;guest-title\\007Y\\033[31mZ\\033[0m\\n'"
	wait_for "^SB-SYNCED" 1 120 && wait_for "^LINK=" 1 30
	type_line 'poweroff -f'
	finish 60
	sed -n 's/^microvm: \(seccomp on: .*\)/MVTIME sandbox-on \1/p' "$out" | tr -d '\r'
	expect sandbox-on "every thread (main, 2 vCPUs, console, blk worker) has a filter: $threads" \
		test "$threads" = 5/5
	expect sandbox-on "no new privileges in every thread: $nnp" test "$nnp" = 5/5
	expect sandbox-on "every thread runs as uid 1000 ($uids), gid 1000 ($gids), no groups" \
		sh -c "[ '$uids' = 5/5 ] && [ '$gids' = 5/5 ] && [ -z '$groups' ]"
	expect sandbox-on "every descriptor past stdio is close-on-exec${leaks:+ (not: $leaks)}" \
		test -z "$leaks"
	expect sandbox-on "RLIMIT_NOFILE lowered to the $nfds descriptors in use + slack ($nofile)" \
		sh -c "set -- $nofile; [ \"\$1\" = \"\$2\" ] && [ \"\$1\" -ge $nfds ] && [ \"\$1\" -le $((nfds + 24)) ]"
	expect sandbox-on "the TAP was created before the drop (${tap:-none})" test -n "$tap"
	expect sandbox-on "the guest's fsync'ed writes reach the root-owned image" \
		sh -c "grep -q '^SB-SYNCED' '$out' && [ \"\$(head -c 1048576 '$TMP/sb.img' | sha256sum)\" = \"\$(yes sandboxed-data | head -c 1048576 | sha256sum)\" ]"
	expect sandbox-on "the guest's eth0 comes up" has "^LINK="
	expect sandbox-on "sanitize = on: text kept, escape sequences gone" \
		sh -c "grep -q '^XYZ' '$out' && ! grep -q \"\$(printf '\\033')\" '$out'"
	expect sandbox-on "exit 0 (got $status)" test "$status" = 0

	# A system call taken out of the list (seccomp_deny) that the guest makes microvm
	# need: the blk worker's fdatasync on the guest's flush. The filter is in force in the
	# running monitor: it stops with the call named.
	start sandbox-deny --set memory.size=256M --set machine.seccomp_deny=fdatasync \
		--set sb.type=virtio-blk --set sb.path="$TMP/sb.img" --set sb.engine=sync
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'dev() { for d in /sys/block/vd*; do [ "$(cat $d/serial)" = $1 ] && echo /dev/${d##*/}; done; }'
	type_line 'dd if=/dev/zero of=$(dev sb) bs=4k count=1 conv=fsync 2>/dev/null; echo FLUSHED'
	finish 60
	expect sandbox-deny "exit 1 (got $status)" test "$status" = 1
	expect sandbox-deny "the message names the thread and the call" \
		has "seccomp: the blk-worker thread made a system call outside its allowlist: fdatasync (83)"

	# seccomp = log: the same call is let through and the kernel logs it (audit type 1326).
	dmesg -c >/dev/null
	start sandbox-log --set memory.size=256M --set machine.seccomp=log \
		--set machine.seccomp_deny=fdatasync \
		--set sb.type=virtio-blk --set sb.path="$TMP/sb.img" --set sb.engine=sync
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	type_line 'dev() { for d in /sys/block/vd*; do [ "$(cat $d/serial)" = $1 ] && echo /dev/${d##*/}; done; }'
	type_line 'dd if=/dev/zero of=$(dev sb) bs=4k count=1 conv=fsync 2>/dev/null && echo LOG-FLUSHED'
	wait_for "^LOG-FLUSHED" 1 60
	type_line 'poweroff -f'
	finish 60
	logged=$(dmesg | grep 'type=1326' | grep -c 'syscall=83 ')
	expect sandbox-log "the flush completes and microvm exits 0 (got $status)" \
		sh -c "grep -q '^LOG-FLUSHED' '$out' && [ '$status' = 0 ]"
	expect sandbox-log "the kernel logged fdatasync (syscall=83) $logged time(s)" test "$logged" -gt 0
	rm -f "$TMP/sb.img"

	# Never root: mvuser starts microvm with /dev/kvm through its group and a TAP made for
	# it beforehand; the guest reaches the host over it.
	"$NETTOOL" mktap mvsbu mq 1000
	ip addr add 192.168.109.1/24 dev mvsbu
	ip link set mvsbu up
	kvm_mode=$(stat -c '%a %g' /dev/kvm)
	chgrp 1000 /dev/kvm
	chmod 660 /dev/kvm
	MVWRAP="$NETTOOL runas 1000 1000"
	start sandbox-user --set machine.vcpus=2 --set memory.size=256M \
		--set net0.type=virtio-net --set net0.tap=mvsbu --set net0.queues=2
	MVWRAP=""
	wait_for "init reached" 1 120 && wait_for "microvm:/#" 1 10
	uids=$(tasks_with $pid "Uid:[[:space:]]*1000[[:space:]]*1000[[:space:]]*1000[[:space:]]*1000")
	threads=$(tasks_with $pid "Seccomp:[[:space:]]*2")
	type_line 'ip link set eth0 up && ip addr add 192.168.109.2/24 dev eth0'
	type_line "ping -c 3 -W 5 192.168.109.1 >/dev/null; echo PING-RESULT=\$?"
	wait_for "^PING-RESULT=[0-9]" 1 60
	type_line 'poweroff -f'
	finish 60
	chmod "${kvm_mode% *}" /dev/kvm
	chgrp "${kvm_mode#* }" /dev/kvm
	"$NETTOOL" deltap mvsbu mq
	expect sandbox-user "runs as uid 1000 in every thread ($uids), filtered ($threads)" \
		sh -c "[ '$uids' = '$threads' ] && [ '${threads%/*}' -ge 4 ]"
	expect sandbox-user "the guest pings the host through the user's TAP" has "^PING-RESULT=0"
	expect sandbox-user "exit 0 (got $status)" test "$status" = 0
}
