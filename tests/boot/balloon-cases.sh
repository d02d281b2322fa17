# virtio-balloon boot tests, sourced by tests/boot/cases.sh (its helpers and counters; api()
# and wait_sock from api-cases.sh): a 768 MiB guest fills 512 MiB of tmpfs and frees it, and
# the monitor's RSS must fall by 300 MiB through free-page reporting; an inflate to 256 MiB
# and a deflate through the API, seen in the guest's MemTotal and the host's RSS; the
# statistics the guest sends.

# The monitor's resident memory, in MiB.
rss_mib() { awk '/^VmRSS:/ { r = int($2 / 1024) } END { print r + 0 }' "/proc/$pid/status" 2>/dev/null || echo 0; }
# json_int KEY: the integer field KEY of $reply, or -1.
json_int() { v=$(echo "$reply" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"); echo "${v:--1}"; }
# guest_kb KEY: ask the guest for /proc/meminfo's KEY, into $kb (kB); each question tagged
# with a fresh number (not in a subshell: the count must go on).
guest_kb() {
	gk=$((gk + 1))
	type_line "echo MI$gk=\$(sed -n 's/^$1: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo)"
	wait_for "^MI$gk=[0-9]" 1 30
	kb=$(sed -n "s/^MI$gk=\([0-9]*\).*/\1/p" "$out" | head -n 1)
}
# poll_until SECONDS STEP COMMAND...: run COMMAND every STEP s until it succeeds; the time it
# took in $took (s); false at the deadline or when the monitor has ended.
poll_until() {
	pu_limit=$1
	pu_step=$2
	shift 2
	pu0=$(now)
	until "$@"; do
		took=$(echo "$pu0 $(now)" | awk '{printf "%.1f", $2 - $1}')
		if ! kill -0 "$pid" 2>/dev/null || [ "$(echo "$took $pu_limit" | awk '{print ($1 >= $2)}')" = 1 ]; then
			return 1
		fi
		sleep "$pu_step"
	done
	took=$(echo "$pu0 $(now)" | awk '{printf "%.1f", $2 - $1}')
}
rss_at_most() { [ "$(rss_mib)" -le "$1" ]; }
# actual_at MIB: GET /balloon says the driver holds MIB.
actual_at() { api balloon-poll GET /balloon >/dev/null && [ "$(json_int actual_mib)" = "$1" ]; }
# stats_in: GET /balloon/statistics has a free_memory from the guest.
stats_in() { api balloon-stats GET /balloon/statistics >/dev/null && [ "$(json_int free_memory)" -gt 0 ]; }

# balloon_boot NAME EXTRA-SETS...: a 768 MiB guest with a balloon and the API, at its prompt.
balloon_boot() {
	bn=$1
	shift
	gk=0
	SOCK=$TMP/$bn.sock
	start "$bn" --set memory.size=768M --set balloon.type=virtio-balloon "$@" --api-sock "$SOCK"
	if ! wait_sock || ! wait_for "init reached" 1 180 || ! wait_for "microvm:/#" 1 10; then
		finish 5
		result "$bn" FAIL "the guest did not come up"
		show
		return 1
	fi
}

# balloon_end NAME: power the guest off; it must exit 0.
balloon_end() {
	type_line 'poweroff -f'
	finish 60
	expect "$1" "poweroff gives exit 0 (got $status)" test "$status" = 0
}

# fill: 512 MiB into tmpfs (every page touched, so the host backs it), $filled = the RSS after.
# (/tmp holds half of RAM unless told otherwise.)
balloon_fill() {
	type_line 'mount -o remount,size=600M /tmp'
	type_line 'dd if=/dev/zero of=/tmp/fill bs=1M count=512 2>/dev/null && echo FILLED-$((6*7))'
	wait_for "^FILLED-42" 1 300
	filled=$(rss_mib)
}

# balloon_reporting_case [TRANSPORT]: on virtio-mmio, or on TRANSPORT (pci).
balloon_reporting_case() {
	br=balloon-report${1:+-$1}
	balloon_boot "$br" --set balloon.free_page_reporting=on \
		--set balloon.stats_polling_interval_s=1 --set balloon.transport="${1:-mmio}" || return
	type_line 'echo DRV=$(ls /sys/bus/virtio/drivers/virtio_balloon | grep -c virtio)'
	wait_for "^DRV=" 1 30
	booted=$(rss_mib)
	balloon_fill
	type_line 'rm /tmp/fill && echo FREED-$((6*7))'
	wait_for "^FREED-42" 1 60
	# Linux reports free 2 MiB blocks about 2 s after they were freed, in rounds.
	poll_until 60 0.1 rss_at_most $((filled - 300))
	fell=$?
	after=$(rss_mib)
	echo "MVTIME $br RSS booted $booted MiB, filled $filled MiB, after reporting $after MiB in $took s"
	expect "$br" "the guest's virtio_balloon driver bound" has "^DRV=1"
	expect "$br" "filling 512 MiB of tmpfs raised the RSS by 400+ MiB ($booted -> $filled MiB)" \
		test "$filled" -ge $((booted + 400))
	expect "$br" "free-page reporting: RSS down by 300+ MiB ($filled -> $after MiB in $took s)" \
		test "$fell" = 0
	# Statistics: the driver answers the device's requests every second.
	poll_until 10 0.25 stats_in
	stats=$reply
	echo "MVAPI balloon-stats $stats"
	expect "$br" "GET /balloon/statistics: free_memory and total_memory from the guest" \
		sh -c "echo '$stats' | grep -q '\"free_memory\":[1-9]' && echo '$stats' | grep -q '\"total_memory\":[1-9]'"
	api "$br" PATCH /balloon/statistics '{"stats_polling_interval_s": 0}'
	off=$code
	expect "$br" "statistics cannot be turned off after boot (400, got $off)" test "$off" = 400
	balloon_end "$br"
}

balloon_inflate_case() {
	balloon_boot balloon-inflate --set balloon.amount_mib=0 || return
	guest_kb MemTotal
	total0=$kb
	balloon_fill
	# Freed, not reported (no free_page_reporting): the host keeps the pages.
	type_line 'rm /tmp/fill && echo FREED-$((6*7))'
	wait_for "^FREED-42" 1 60
	before=$(rss_mib)
	t1=$(now)
	api balloon-inflate PATCH /balloon '{"amount_mib": 256}'
	c1=$code
	poll_until 120 0.25 actual_at 256
	inflated=$?
	tinf=$took
	poll_until 20 0.1 rss_at_most $((before - 128))
	fell=$?
	after=$(rss_mib)
	guest_kb MemTotal
	total1=$kb
	echo "MVTIME balloon-inflate 256 MiB in $tinf s (from the PATCH: $(echo "$t1 $(now)" | awk '{printf "%.1f", $2 - $1}') s); RSS $before -> $after MiB; MemTotal $total0 -> $total1 kB"
	expect balloon-inflate "PATCH /balloon amount_mib 256: 204 (got $c1)" test "$c1" = 204
	expect balloon-inflate "the driver reached actual_mib 256 ($tinf s)" test "$inflated" = 0
	expect balloon-inflate "the guest's MemTotal fell by ~256 MiB ($total0 -> $total1 kB)" \
		test $((total0 - total1)) -ge $((250 * 1024)) -a $((total0 - total1)) -le $((260 * 1024))
	# (The driver takes free pages, not only those the file had: at least half of them.)
	expect balloon-inflate "the host RSS fell by 128+ MiB ($before -> $after MiB)" test "$fell" = 0
	api balloon-inflate PATCH /balloon '{"amount_mib": 0}'
	c2=$code
	poll_until 120 0.25 actual_at 0
	deflated=$?
	guest_kb MemTotal
	total2=$kb
	echo "MVTIME balloon-deflate in $took s; MemTotal $total2 kB"
	expect balloon-inflate "deflate: PATCH 204 ($c2), actual_mib 0, MemTotal back ($total2 kB)" \
		test "$c2" = 204 -a "$deflated" = 0 -a "${total2:-0}" = "$total0"
	api balloon-inflate PATCH /balloon '{"amount_mib": 4096}'
	c3=$code
	expect balloon-inflate "a target beyond the guest's RAM is refused (400, got $c3)" test "$c3" = 400
	balloon_end balloon-inflate
}

# A misbehaving driver (tests/boot/balloonpoke.c) on the balloon, its kernel driver unbound:
# page numbers outside RAM refused and counted, a bad statistics buffer, a buffer outside RAM
# (the device needs a reset); then the kernel's driver bound again inflates as asked.
balloon_poke_case() {
	# (the monitor's messages apart: a warning would split the tool's result lines)
	ERR=$TMP/balloon-poke.err
	balloon_boot balloon-poke --set balloon.stats_polling_interval_s=1
	st=$?
	ERR=""
	[ "$st" = 0 ] || return
	"$MV" --config "$machine" --set balloon.type=virtio-balloon --check >"$TMP/bpoke-check.out" 2>&1
	base=$(sed -n 's/.*balloon: virtio-balloon.*virtio-mmio at \(0x[0-9a-f]*\),.*/\1/p' "$TMP/bpoke-check.out")
	type_line 'd=$(ls /sys/bus/virtio/drivers/virtio_balloon | grep virtio); echo $d >/sys/bus/virtio/drivers/virtio_balloon/unbind && echo UNBOUND'
	wait_for "^UNBOUND" 1 30
	type_line "balloonpoke ${base:-0x0a000000}"
	wait_for "^BALLOONPOKE-DONE" 1 60
	type_line 'echo $d >/sys/bus/virtio/drivers/virtio_balloon/bind && echo REBOUND'
	wait_for "^REBOUND" 1 30
	api balloon-poke PATCH /balloon '{"amount_mib": 64}'
	poll_until 60 0.25 actual_at 64
	again=$?
	balloon_end balloon-poke
	expect balloon-poke "page numbers outside RAM: the inflate buffer comes back, no reset" \
		has "^INFLATE-OUTSIDE-USED=1 NEEDS-RESET=0"
	expect balloon-poke "the same deflated: back, no reset" has "^DEFLATE-OUTSIDE-USED=1 NEEDS-RESET=0"
	expect balloon-poke "a 7-byte statistics buffer: returned at the timer's tick, no reset" \
		has "^STATS-BAD-USED=1 NEEDS-RESET=0"
	expect balloon-poke "a buffer outside RAM sets DEVICE_NEEDS_RESET" has "^OUTSIDE-NEEDS-RESET=1"
	expect balloon-poke "reset after it" has "^RESET-STATUS=0"
	# 4 page numbers outside RAM and the stray bytes, inflated; 4 deflated; the bad buffer.
	expect balloon-poke "the monitor counted 9 refused page numbers and 1 bad statistics buffer" \
		sh -c "grep -q ', 9 refused,.* 1 bad statistics' '$TMP/balloon-poke.err'"
	expect balloon-poke "the kernel's driver bound again inflates to 64 MiB ($took s)" test "$again" = 0
}
