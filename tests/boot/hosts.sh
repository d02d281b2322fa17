# Sourced by tests/run.sh (make check) and tests/stress.sh (make check-stress): run the
# boot tests in an emulated host, watched for stalls, resumed after one, and counted.
# The caller sets logs (the log directory), boot_limit and stall_limit (seconds).

# unfinished NAME STATUS: say how a boot-test host ended without its summary, with the
# last lines it printed (the emulated host's heartbeat, a kernel oops, the last case started)
unfinished() {
	case "$2" in
	124) echo "check: $1: stopped after ${boot_limit} s (timeout); the log ends with:" ;;
	*) echo "check: $1: ended (status $2) without a summary; the log ends with:" ;;
	esac
	tr -d '\r' <"$logs/$1.log" | grep -v '^ *$' | tail -n 12 | sed 's/^/    /'
}

# host_state KIND NAME: what the emulated CPUs of stalled host NAME were doing, asked of
# QEMU's monitor three times a second apart (registers; on x86 the local APIC and its
# timer), into boot-NAME.state: the same place each time is a CPU stuck there, different
# places a livelock.
host_state() {
	sock=$logs/boot-$2.monitor
	if [ ! -S "$sock" ] || ! command -v socat >/dev/null 2>&1; then
		echo "(no QEMU monitor to ask)"
		return
	fi
	cmds="info status
info registers -a"
	[ "$1" != x86 ] || cmds="$cmds
info lapic"
	: >"$logs/boot-$2.state"
	for i in 1 2 3; do
		[ "$i" = 1 ] || sleep 1
		echo "sample $i"
		echo "$cmds" | timeout 30 socat -t 2 - "UNIX-CONNECT:$sock" 2>&1 |
			sed 's/\x1b\[[0-9;]*[A-Za-z]//g' | tr -d '\r' | grep -v '^(qemu)\|^QEMU .* monitor'
	done >>"$logs/boot-$2.state"
	grep -q '^VM status' "$logs/boot-$2.state" ||
		echo "QEMU's monitor did not answer: QEMU itself is stuck"
	# The registers that say where and in what state each CPU was; the rest is in the file.
	grep -E '^sample|^CPU#|RIP=|EFL=|^ ?PC=|PSTATE=|^CR0=|^EFER=|^VM status|^LVTT|^Timer|^IRR|^ISR|^APR' \
		"$logs/boot-$2.state"
}

# name_code KIND NAME: the kernel function (or module's) each CPU of stalled host NAME was
# in, from the code symbols of the same host kernel (a short kallsyms run, cached per
# kernel). A CPU in guest mode shows the guest's registers, whose addresses mean nothing
# here: on arm64 its PSTATE says EL1 (the host runs at EL2); on x86 its CR3 is the guest's.
name_code() {
	[ -s "$logs/boot-$2.state" ] && [ -s "$logs/boot-$2.monitor.kernel" ] || return 0
	syms=${MICROVM_CACHE:-$HOME/.cache/microvm}/kallsyms-$1-$(cut -d' ' -f2 \
		"$logs/boot-$2.monitor.kernel")
	if [ ! -s "$syms" ]; then
		mkdir -p "$(dirname "$syms")"
		timeout 300 tests/boot/emulated-host.sh "$1" kallsyms 2>/dev/null | tr -d '\r' |
			sed -n 's/^KSYM \([0-9a-f]\{16\} [tT] [^$].*\)/\1/p' | sort >"$syms.tmp" &&
			[ -s "$syms.tmp" ] && mv "$syms.tmp" "$syms"
		rm -f "$syms.tmp"
	fi
	[ -s "$syms" ] || { echo "(the host kernel's symbols could not be read)"; return; }
	# Each address once: a stuck CPU shows the same one in every sample.
	for ip in $(sed -n 's/.*\(RIP\|PC\)=\([0-9a-f]\{16\}\).*/\2/p' "$logs/boot-$2.state" |
		awk '!seen[$0]++'); do
		# Fixed-width hexadecimal compares as text; the list is sorted.
		awk -v a="$ip" '$1 > a { exit } { at = $1; s = $3 " " $4 }
			END { print a ": " (at ? s " (at " at ")" : "below the kernel") }' "$syms"
	done
}

# boot_host KIND [NAME ONLY]: the boot tests in emulated host KIND (only the groups or units
# ONLY, as MVONLY), their console in boot-NAME.log (NAME defaults to KIND) and how the host
# ended in boot-NAME.status (124: timeout). The host prints a heartbeat every
# 20 s, so a console silent for BOOT_STALL_SECONDS means the emulated machine itself stopped
# (its kernel or QEMU), not a test. It is then asked what its CPUs were doing, stopped, and
# started again from the unit of tests it stopped in (MVFROM): the units it had finished
# keep their results. boot-NAME.stalls says what was seen; the stalled console stays in
# boot-NAME.log.stalled-N. A host is started again three times at most.
boot_host() {
	name=${2:-$1}
	log=$logs/boot-$name.log
	: >"$logs/boot-$name.stalls"
	: >"$log"
	from=""
	host_t0=$(date +%s)
	for attempt in 1 2 3 4; do
		part=$log.part
		MONITOR=$logs/boot-$name.monitor MVFROM=$from MVONLY=${3:-${MVONLY:-}} \
			timeout "$boot_limit" tests/boot/emulated-host.sh "$1" tests >"$part" 2>&1 &
		tpid=$!
		size=0
		quiet=0
		while kill -0 $tpid 2>/dev/null; do
			sleep 5
			now=$(wc -c <"$part")
			if [ "$now" != "$size" ]; then
				size=$now
				quiet=0
			elif [ $((quiet += 5)) -ge "$stall_limit" ]; then
				break
			fi
		done
		if [ "$quiet" -lt "$stall_limit" ]; then
			wait $tpid
			echo $? >"$logs/boot-$name.status"
			cat "$part" >>"$log"
			rm -f "$part"
			echo $(($(date +%s) - host_t0)) >"$logs/boot-$name.secs"
			return 0
		fi
		# Stalled: the unit it stopped in is run again; what came before it counts.
		unit=$(grep -a '^MVUNIT' "$part" | tail -n 1 | cut -d' ' -f2 | tr -d '\r')
		{
			echo "check: boot-$name: the emulated host stalled (console silent for" \
				"${stall_limit} s, in unit ${unit:-none} of attempt $attempt); its console" \
				"ends with:"
			tr -d '\r' <"$part" | grep -v '^ *$' | tail -n 8 | sed 's/^/    /'
			echo "  what QEMU says its CPUs were doing (all of it in boot-$name.state):"
			host_state "$1" "$name" | sed 's/^/    /'
		} >>"$logs/boot-$name.stalls" 2>&1
		kill $tpid # timeout passes it on to QEMU
		wait $tpid
		{
			echo "  the code they were in (by the host kernel's symbols):"
			name_code "$1" "$name" | sed 's/^/    /'
		} >>"$logs/boot-$name.stalls" 2>&1
		cp "$part" "$log.stalled-$attempt"
		if [ -n "$unit" ]; then
			# Keep the finished units' lines (everything before the stalled unit began).
			awk -v u="$unit" '/^MVUNIT / && $2 == u { exit } { print }' "$part" >>"$log"
		fi
		from=$unit
		[ "$attempt" -lt 4 ] || break
		echo "check: boot-$name: started again from unit ${unit:-its start}" \
			>>"$logs/boot-$name.stalls"
	done
	echo "check: boot-$name: stalled four times; not run again" >>"$logs/boot-$name.stalls"
	echo $(($(date +%s) - host_t0)) >"$logs/boot-$name.secs"
	echo 124 >"$logs/boot-$name.status"
}

# boot_counts LOG: "N passed, N failed" from the MVTEST lines of a host's console (a host
# started again after a stall has two summaries' worth); one more failure without the last
# run's MVTEST-SUMMARY line (the host ended before its end)
boot_counts() {
	tr -d '\r' <"$1" | awk '$1 == "MVTEST" && $3 == "PASS" { p++ } $1 == "MVTEST" && $3 == "FAIL" { f++ }
		$1 == "MVTEST-SUMMARY" { done = 1 } END { printf "%d passed, %d failed\n", p, f + !done }'
}

# host_report NAME: what a reader of host NAME's run needs: its stalls, its failed checks
# with the end of the first failed case's guest output, and how it ended without its summary
host_report() {
	[ ! -s "$logs/boot-$1.stalls" ] || cat "$logs/boot-$1.stalls"
	grep -E '^MVTEST .* FAIL' "$logs/boot-$1.log" && first_output "boot-$1"
	grep -q MVTEST-SUMMARY "$logs/boot-$1.log" ||
		unfinished "boot-$1" "$(cat "$logs/boot-$1.status")"
}

# first_output NAME: the end of the guest output that the first failed case showed
first_output() {
	tr -d '\r' <"$logs/$1.log" | awk '/^---- .* output \(last/ && !n { print; n = 1; next }
		n && /^----$/ { exit } n { l[n++ % 10] = $0 }
		END { for (i = (n > 10 ? n - 10 : 1); i < n; i++) print l[i % 10] }' | sed 's/^/    /'
}
