#!/bin/sh
# Peer comparison, run as root inside an emulated host (or natively on an arm64 board with
# KVM): microvm on each transport against kvmtool (lkvm, mmio and pci) and kvm-host (pci only,
# a fixed 1 GiB guest), the same guest kernel, initramfs, disk and workloads, the monitors
# interleaved: every round runs every case once, odd rounds in order and even rounds in
# reverse. Cases whose binary is missing are skipped with a message.
# Workloads (PEER_WORK, default "boot blk net vsock"), a 256 MiB guest with 1 vCPU:
#   boot: exec to exit of a guest whose init powers off at once (the project's minimal
#         kernel, then DISTRO_KERNEL when set); the peak RSS of the monitor process.
#   blk:  one disk (the tools file system, then a 256 MiB region at 128 MiB that fio uses):
#         O_DIRECT 4 KiB random read at QD1 (libaio), 1 MiB sequential read and write at
#         QD1 and QD8 (libaio), 4 KiB random read at QD32 and QD256 (io_uring), FIO_SECONDS
#         each (PEER_BLK_JOBS picks them; read-1m is 1 MiB reads at QD4); each counted, per
#         request, for KVM's exits (debugfs), wake-ups and, in round 1, once more under
#         strace -c -f for the monitor's system calls (counts only, that run is not timed).
#   net:  a TAP, iperf3 one TCP stream each way for IPERF_SECONDS.
#   vsock: a vsock device, guest CID 3 (microvm: its own device in userspace, the host side
#         through uds_path's CONNECT protocol and <uds_path>_PORT; kvmtool: --vsock 3, the
#         kernel's vhost-vsock, the host side AF_VSOCK): one stream of VSOCK_MIB MiB (64)
#         host to guest, then one guest to host, nettool reading and writing 1 MiB at a time
#         (MB/s as the host's side timed it); then VSOCK_PINGS (2000) round trips of 64
#         bytes from the host to an echo server in the guest (median and mean).
# Prints "MVPEER ..." lines (see tests/bench/peers-run.sh, which makes the report).
MV=${MV:-/microvm}
MVDIR=${MVDIR:-/}
PEERS=${PEERS:-/peers}
NETTOOL=${NETTOOL:-nettool}
HOSTKIND=${HOSTKIND:-rpi5}
RUNS=${BENCH_RUNS:-3}
SECS=${FIO_SECONDS:-5}
ISECS=${IPERF_SECONDS:-5}
VMIB=${VSOCK_MIB:-64}
VPINGS=${VSOCK_PINGS:-2000}
WORK=${PEER_WORK:-boot blk net vsock}
BLK_JOBS=${PEER_BLK_JOBS:-randread-qd1 read-1m-qd1 read-1m-qd8 write-1m-qd1 write-1m-qd8 randread-qd32 randread-qd256}
TOOLS=${TOOLS:-}
IPERF=iperf3 STRACE=strace
[ -n "$TOOLS" ] && IPERF=$TOOLS/bin/iperf3 STRACE=$TOOLS/bin/strace
G=$MVDIR/build/guest
TMP=${TMPDIR:-/tmp}/mvpeers.$$
mkdir -p "$TMP/lkvm-home"
machine=$MVDIR/machines/rpi5.ini
[ "$HOSTKIND" = gicv3 ] && machine=$MVDIR/machines/virt-gicv3.ini
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

# The cases: MONITOR-TRANSPORT[:KEY=VALUE...] (microvm: more [blk0] settings, net.KEY=VALUE
# for [net0], SECTION.KEY=VALUE for others; kvmtool: vhost=1 for its vhost-net; any:
# only=WORKLOAD, the last option, to run one workload of it), those whose monitor is here.
cases=""
for c in ${PEER_CASES:-microvm-mmio microvm-pci lkvm-mmio lkvm-pci kvm-host-pci microvm_base-mmio microvm_base-pci}; do
	case $c in
	microvm-*) bin=$MV ;;
	microvm_base-*) bin=$PEERS/microvm-base ;;
	lkvm-*) bin=$PEERS/lkvm ;;
	kvm-host-*) bin=$PEERS/kvm-host ;;
	esac
	if [ -x "$bin" ]; then
		cases="$cases $c"
	elif [ -z "${PEER_CASES:-}" ] && [ "${c#microvm_base}" = "$c" ]; then
		echo "bench-peers: $c skipped: no $bin" >&2
	fi
done
for m in lkvm kvm-host microvm-base; do
	[ -f "$PEERS/$m.version" ] && echo "MVPEER version $m $(cat "$PEERS/$m.version")"
done

# The disk: the tools file system (fio, iperf3, strace for the guest), then fio's region; a
# file in this host's memory (tmpfs), or with L1_DISK the host's own block device holding
# the same (PEER_IMAGE=bdev in tests/bench/peers-run.sh). The region is in memory before
# the first case: written whole in the file (a hole reads faster than data, and the first
# write to it allocates), read whole from the block device (its page cache). Linux drops a
# block device's page cache when its last opener closes it: this script holds it open (fd 7)
# for the whole run, or every monitor would start each job reading from the disk.
if [ -n "${L1_DISK:-}" ]; then
	ln -s "$L1_DISK" "$TMP/disk.img"
	exec 7<"$L1_DISK"
	dd if="$L1_DISK" of=/dev/null bs=1M skip=128 count=256 2>/dev/null
	echo "MVPEER image bdev $L1_DISK (the host's block device, $(($(cat /sys/block/${L1_DISK##*/}/size) >> 11)) MiB)"
else
	dd if="$G/tools.ext4" of="$TMP/disk.img" bs=1M 2>/dev/null
	dd if=/dev/zero of="$TMP/disk.img" bs=1M seek=128 count=256 conv=notrunc 2>/dev/null
	echo "MVPEER image tmpfs $TMP/disk.img (a file in the host's memory)"
fi

# monitor CASE KERNEL INITRD [DISK [TAP]]: the command line of one run (a 256 MiB guest,
# 1 vCPU, the console on the terminal; kvm-host has none of these options); with $vsock set,
# a vsock device, guest CID 3 (microvm: $vsock its uds_path)
monitor() {
	c=${1%%:*} k=$2 i=$3 d=${4:-} t=${5:-}
	tr=${c##*-}
	case $c in
	microvm*)
		bin=$MV
		[ "${c%%-*}" = microvm_base ] && bin=$PEERS/microvm-base
		# microvm-pci:engine=inline:ioeventfd=off: more settings of the disk; net.vhost=on
		# one of the NIC; memory.hugepages=off (SECTION.KEY) one of the machine
		sets="" nsets="" msets=""
		for o in $(echo "${1#"$c"}" | tr ':' ' '); do
			case $o in
			only=*) ;;
			net.*) nsets="$nsets --set net0.${o#net.}" ;;
			*.*=*) msets="$msets --set $o" ;;
			*) sets="$sets --set blk0.$o" ;;
			esac
		done
		echo "$bin${d:+ -v}${report:+ --boot-report $report} --config $machine --kernel $k --initrd $i --set machine.vcpus=1$msets" \
			"--set memory.size=256M${d:+ --set blk0.type=virtio-blk --set blk0.path=$d}" \
			"${d:+--set blk0.transport=$tr$sets}${t:+ --set net0.type=virtio-net}" \
			"${t:+--set net0.tap=$t --set net0.transport=$tr$nsets}" \
			"${vsock:+--set vsock0.type=virtio-vsock --set vsock0.cid=3 --set vsock0.uds_path=$vsock}" \
			"${vsock:+--set vsock0.transport=$tr}"
		;;
	lkvm-*)
		net=mode=none
		[ -z "$t" ] || net=mode=tap,tapif=$t
		case $1 in *:vhost=1*) [ -z "$t" ] || net=$net,vhost=1 ;; esac
		echo "env HOME=$TMP/lkvm-home $PEERS/lkvm run -k $k -i $i -c 1 -m 256" \
			"--console serial --virtio-transport $tr${d:+ -d $d} -n $net${vsock:+ --vsock 3}"
		;;
	kvm-host-*)
		echo "$PEERS/kvm-host -k $k -i $i${d:+ -d $d}"
		;;
	esac
}

# say LINE: send a command line to the guest's shell 32 bytes at a time (kvmtool's UART
# drops what does not fit its 64-byte receive buffer)
say() {
	echo "$1" | awk '{ for (i = 1; i <= length($0); i += 32) print substr($0, i, 32) }' |
		while IFS= read -r part; do
			printf '%s' "$part" >&3
			sleep 0.1
		done
	echo >&3
}

# until_seen PATTERN [SECONDS]: wait for PATTERN in the guest's output; false on timeout.
# Polled twice a second: each poll is a process in the emulated host, competing with the
# monitor under test for its two CPUs.
until_seen() {
	n=0
	while ! grep -aq -- "$1" "$TMP/out"; do
		[ $n -lt $((${2:-180} * 2)) ] || return 1
		sleep 0.5
		n=$((n + 1))
	done
}

vsock=""

# measured FIELD: a figure of the last run from nettool measure
measured() { sed -n "s/.*$1 \([0-9.-]*\).*/\1/p" "$TMP/m.txt"; }

# --boot-report fields kept per microvm boot: phases (ms) and memory (KiB)
phases="boot_files_read vm_built images_loaded first_kvm_run rss_kib guest_ram_rss_kib monitor_rss_kib"

boot() {
	c=$1 r=$2
	for k in minimal ${DISTRO_KERNEL:+distro}; do
		kernel=$G/Image
		[ $k = distro ] && kernel=$DISTRO_KERNEL
		echo "bench-peers: round $r, $c, boot ($k kernel)" >&2
		rm -f "$TMP/m.txt" "$TMP/r.json"
		# microvm reports its phases and memory (--boot-report)
		report=$TMP/r.json
		# shellcheck disable=SC2046
		"$NETTOOL" measure "$TMP/m.txt" $(monitor "$c" "$kernel" "$G/initramfs-poweroff.cpio.gz") \
			</dev/null >"$TMP/out" 2>&1
		report=""
		if ! tr -d '\r' <"$TMP/out" | grep -q "microvm-guest: init reached"; then
			echo "MVPEER-ERROR boot $c $k"
			tail -n 15 "$TMP/out"
			continue
		fi
		echo "MVPEER boot $c $k $r $(measured ms) $(measured maxrss_kib) $(measured status)"
		if [ -s "$TMP/r.json" ]; then
			row=""
			for key in $phases; do
				row="$row $(sed -n "s/^ *\"$key\": \([0-9.-]*\),*$/\1/p" "$TMP/r.json" | head -n 1)"
			done
			echo "MVPEER setup $c $k $r$row"
		fi
	done
}

# session_start CASE [TAP]: boot CASE with the disk (and NIC) to a shell, driven through fd 3
session_start() {
	rm -f "$TMP/in" "$TMP/out" "$TMP/m.txt" "$TMP/m.txt.pid"
	mkfifo "$TMP/in"
	# shellcheck disable=SC2046
	"$NETTOOL" measure "$TMP/m.txt" $(monitor "$1" "$G/Image" "$G/initramfs.cpio.gz" \
		"$TMP/disk.img" "${2:-}") <"$TMP/in" >"$TMP/out" 2>&1 &
	mpid=$!
	exec 3>"$TMP/in"
	until_seen "microvm:/#" || return 1
	say 'stty cols 500; mkdir -p /mnt; mount -o ro /dev/vda /mnt; echo MOUNTED-$((1+1))'
	until_seen "MOUNTED-2"
}

session_end() {
	(trap '' PIPE; echo "poweroff -f" >&3) 2>/dev/null
	exec 3>&-
	wait "$mpid"
}

# kvmstats: every KVM statistic of the monitor's VM, "name value" (debugfs, summed over vCPUs)
kvmstats() {
	for f in /sys/kernel/debug/kvm/"$(cat "$TMP/m.txt.pid")"-*/*; do
		[ -f "$f" ] && echo "${f##*/} $(cat "$f" 2>/dev/null)"
	done
}

# counts FILE: the monitor's counts now, "name value": KVM's statistics of its VM, and per
# thread (threads that ended are not counted) its voluntary context switches (each a wait
# that a wake-up ended), the CPU time it ran and the time it was runnable but waited for a
# CPU (schedstat, in microseconds): *_vcpu for the threads whose name says vcpu (their CPU
# time includes the guest's), *_other for the rest
counts() {
	pid=$(cat "$TMP/m.txt.pid")
	{
		kvmstats
		for t in /proc/"$pid"/task/*; do
			w=$(awk '/^voluntary_ctxt_switches/ { print $2 }' "$t/status" 2>/dev/null)
			read -r run queued _ <"$t/schedstat" 2>/dev/null || run=0 queued=0
			k=other
			case $(cat "$t/comm" 2>/dev/null) in *vcpu*) k=vcpu ;; esac
			echo "wake_$k ${w:-0}"
			echo "cpu_$k $((${run:-0} / 1000))"
			echo "runq_$k $((${queued:-0} / 1000))"
		done
	} | awk '{ s[$1] += $2 } END { for (k in s) print k, s[k] }' >"$1"
}

# The counts kept per workload (KVM's names on arm64, then the guest's and the monitor's).
COUNTED="exits mmio_exit_user mmio_exit_kernel wfi_exit_stat halt_wakeup signal_exits irqs wake_vcpu wake_other cpu_vcpu cpu_other runq_vcpu runq_other"

# job_define: define j in the guest's shell. j TAG COMMAND...: say READY-2-TAG and wait for a
# line, run COMMAND (its output to a file) counting the virtio interrupts the guest takes,
# say DONE-2-TAG and wait for a line, then print its output as OUT-TAG=LINE;END lines and
# IRQS-TAG=N. The host takes the monitor's counts at READY and at DONE, while the guest
# waits: the counts cover the command alone, not the typing or the output (console).
job_define() {
	say 'v() { awk '"'"'/virtio/ { s += $2 } END { print s + 0 }'"'"' /proc/interrupts; }'
	say 'j() { t=$1; shift; echo READY-$((1+1))-$t; read g; a=$(v); "$@" >/tmp/o 2>&1; b=$(v); echo DONE-$((1+1))-$t; read g; sed "s/^/OUT-$t=/; s/\$/;END/" /tmp/o; echo IRQS-$t=$((b-a)); }'
}

# probe: how fast this host runs now, in MB/s of a fixed loop (nettool speed: 256 MiB
# copied in memory). Under emulation the host's own speed moves from minute to minute with
# the machine under it; a job's timed figure is read against the probes at its edges.
probe() {
	"$NETTOOL" speed
}

# counted CASE TAG COMMAND...: run COMMAND in the guest through j, the counts taken at its
# edges into $TMP/TAG.c0 and .c1, the host's speed (probe) at each into $TMP/TAG.p (with
# $trace set, strace -c -f on the monitor meanwhile, into $TMP/strace, and no probe: the run
# is not timed); false when it did not finish within COUNTED_SECONDS
counted() {
	c=$1 tag=$2
	shift 2
	say "j $tag $*"
	until_seen "^READY-2-$tag" 60 || return 1
	[ -n "${trace:-}" ] || probe >"$TMP/$tag.p"
	counts "$TMP/$tag.c0"
	if [ -n "${trace:-}" ]; then
		rm -f "$TMP/strace" "$TMP/strace.err"
		"$STRACE" -c -f -p "$(cat "$TMP/m.txt.pid")" -o "$TMP/strace" 2>"$TMP/strace.err" &
		spid=$!
		n=0
		until grep -q attached "$TMP/strace.err" 2>/dev/null || [ $n -ge 100 ]; do
			sleep 0.1
			n=$((n + 1))
		done
	fi
	echo >&3
	until_seen "^DONE-2-$tag" "${COUNTED_SECONDS:-180}" || return 1
	counts "$TMP/$tag.c1"
	[ -n "${trace:-}" ] || probe >>"$TMP/$tag.p"
	if [ -n "${trace:-}" ]; then
		kill -INT $spid
		wait $spid
	fi
	echo >&3
	until_seen "^IRQS-$tag="
}

# count_lines CASE ITEM RUN UNITS TAG: "MVPEER count CASE ITEM RUN UNITS NAME DELTA" for each
# of COUNTED that moved between TAG's two counts (irqs: the guest's own count); UNITS: the
# requests (or MiB) the job moved; then "MVPEER probe CASE ITEM RUN MB/s", the mean of the
# host's speed at the job's edges
count_lines() {
	awk -v pre="MVPEER probe $1 $2 $3" '{ s += $1; n++ } END { if (n == 2) printf "%s %.0f\n", pre, s / n }' "$TMP/$5.p"
	irqs=$(tr -d '\r' <"$TMP/out" | sed -n "s/^IRQS-$5=//p" | tail -n 1)
	{
		awk 'NR == FNR { a[$1] = $2; next } { print $1, $2 - a[$1] }' "$TMP/$5.c0" "$TMP/$5.c1"
		echo "irqs ${irqs:-0}"
	} | awk -v want=" $COUNTED " -v pre="MVPEER count $1 $2 $3 $4" \
		'index(want, " " $1 " ") && $2 >= 0 { print pre, $1, $2 }'
}

# syscall_lines CASE ITEM UNITS: "MVPEER syscall CASE ITEM UNITS NAME CALLS" from strace -c
# ("% time seconds usecs/call calls [errors] syscall" rows)
syscall_lines() {
	awk -v pre="MVPEER syscall $1 $2 $3" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { print pre, $NF, $4 }' \
		"$TMP/strace"
}

# fio_job JOB: the fio command of a job on the disk's 256 MiB at 128 MiB
fio_job() {
	case $1 in
	randread-qd1) a="--rw=randread --bs=4k --iodepth=1 --ioengine=libaio" ;;
	read-1m) a="--rw=read --bs=1m --iodepth=4 --ioengine=libaio" ;;
	read-1m-qd1 | read-1m-qd8 | write-1m-qd1 | write-1m-qd8)
		a="--rw=${1%%-*} --bs=1m --iodepth=${1##*-qd} --ioengine=libaio" ;;
	randread-qd32) a="--rw=randread --bs=4k --iodepth=32 --ioengine=io_uring" ;;
	randread-qd256) a="--rw=randread --bs=4k --iodepth=256 --ioengine=io_uring" ;;
	esac
	echo "/mnt/bin/fio --name=$1 --filename=/dev/vda --offset=128m --size=256m --direct=1 $a" \
		"--runtime=$SECS --time_based --output-format=terse"
}

# fio_result TAG: "MB/s IOPS requests" of a job's terse line (reads: fields 6 (KiB), 7
# (KiB/s) and 8 (IOPS), writes the same at 47, 48 and 49; requests: KiB over the job's block
# size), nothing when the line is not a whole one without errors (fio terse version 3 has
# 130 fields; j marks a line's end: the console shows a long line in pieces)
fio_result() {
	bs=4 f=6
	case $1 in *-1m*) bs=1024 ;; esac
	case $1 in write-*) f=47 ;; esac
	tr -d '\r' <"$TMP/out" | sed -n "s/^OUT-$1=\(.*\);END$/\1/p" |
		awk -F';' -v bs=$bs -v f=$f '$1 == 3 && $5 == 0 && NF >= 130 { printf "%.1f %.0f %.0f\n", $(f + 1) * 1024 / 1e6, $(f + 2), $f / bs }'
}

blk() {
	c=$1 r=$2
	echo "bench-peers: round $r, $c, blk" >&2
	if ! session_start "$c"; then
		echo "MVPEER-ERROR blk $c boot"
		tail -n 15 "$TMP/out"
		session_end
		return
	fi
	job_define
	# Each job timed and counted; in round 1 each once more under strace -c, for the monitor's
	# system calls (not timed: strace slows every call it counts).
	for job in $BLK_JOBS; do
		for how in timed traced; do
			[ $how = timed ] || [ "$r" = 1 ] || continue
			tag=$job-$r-$how trace=""
			[ $how = timed ] || trace=1
			# shellcheck disable=SC2046
			if counted "$c" $tag $(fio_job $job) && res=$(fio_result $tag) && [ -n "$res" ]; then
				if [ $how = timed ]; then
					echo "MVPEER blk $c $job $r ${res% *}"
					count_lines "$c" "blk-$job" "$r" "${res##* }" $tag
				else
					syscall_lines "$c" "blk-$job" "${res##* }"
				fi
			else
				echo "MVPEER-ERROR blk $c $job $how"
				tr -d '\r' <"$TMP/out" | grep -a "OUT-$tag=" | tail -n 1 | cut -c1-600
				tail -n 15 "$TMP/out"
			fi
		done
	done
	trace=""
	session_end
	case $c in
	microvm*)
		tr -d '\r' <"$TMP/out" | grep -a "^microvm: blk0: " | sed "s/^/MVPEER counters $c /"
		# where the monitor's own memory is, at exit (--verbose)
		tr -d '\r' <"$TMP/out" | grep -a "^microvm: \(  [0-9]* KiB resident\|RSS \)" |
			sed "s/^microvm: */MVPEER memory $c /"
		;;
	esac
}

net() {
	c=$1 r=$2 tap=mvpeer0
	echo "bench-peers: round $r, $c, net" >&2
	case $c in kvm-host-*) tap="" ;; esac # it makes its own tapN
	ls /sys/class/net >"$TMP/nets0"
	# A persistent TAP the monitor attaches to, up before the guest sends anything (kvmtool
	# stops serving its transmit queue after a write to a TAP that is down fails)
	if [ -n "$tap" ]; then
		"$NETTOOL" mktap "$tap"
		ip addr add 10.0.9.1/24 dev "$tap"
		ip link set "$tap" up
	fi
	if ! session_start "$c" "$tap"; then
		echo "MVPEER-ERROR net $c boot"
		tail -n 15 "$TMP/out"
		session_end
		return
	fi
	if [ -z "$tap" ]; then
		tap=$(ls /sys/class/net | grep -vxF -f "$TMP/nets0" | head -n 1)
		ip addr add 10.0.9.1/24 dev "$tap"
		ip link set "$tap" up
	fi
	say 'ip link set eth0 up; ip addr add 10.0.9.2/24 dev eth0; echo NET-$((2+2))'
	until_seen "NET-4"
	job_define
	# Each direction timed and counted; in round 1 each once more under strace -c (not timed).
	for dir in host-to-guest guest-to-host; do
		for how in timed traced; do
			[ $how = timed ] || [ "$r" = 1 ] || continue
			tag=$dir-$r-$how trace=""
			[ $how = timed ] || trace=1
			rev=""
			[ $dir = host-to-guest ] && rev=-R
			"$IPERF" -s -1 -p 5201 >"$TMP/iperf.out" 2>&1 &
			ipid=$!
			n=0
			until grep -q "listening" "$TMP/iperf.out" || [ $n -ge 100 ]; do
				sleep 0.1
				n=$((n + 1))
			done
			# the receiver's summary: "... N MBytes M Mbits/sec ... receiver" (GBytes past
			# 1024 MiB, even with -f m; iperf3 counts bytes in units of 1024)
			if counted "$c" $tag /mnt/bin/iperf3 -c 10.0.9.1 -p 5201 -t "$ISECS" -f m $rev &&
				res=$(tr -d '\r' <"$TMP/out" | grep "^OUT-$tag=.*receiver" |
					sed -n 's/.* \([0-9.]*\) \([KMG]\)Bytes *\([0-9.]*\) Mbits.sec.*/\1 \2 \3/p' | tail -n 1 |
					awk '{ print $1 * ($2 == "G" ? 1024 : $2 == "K" ? 1 / 1024 : 1), $3 }') &&
				[ -n "$res" ]; then
				mib=${res%% *}
				if [ $how = timed ]; then
					echo "MVPEER net $c $dir $r $(echo "$res" | awk '{ printf "%.1f", $2 / 8 }')"
					count_lines "$c" "net-$dir" "$r" "$mib" $tag
				else
					syscall_lines "$c" "net-$dir" "$mib"
				fi
			else
				echo "MVPEER-ERROR net $c $dir $how"
				grep -ai "warn\|error\|fatal\|fail" "$TMP/out" | head -n 8
				tail -n 8 "$TMP/out"
				kill $ipid 2>/dev/null
			fi
			wait $ipid
		done
	done
	trace=""
	session_end
	case $c in
	microvm*)
		# the monitor's own memory with one disk and one NIC, at exit (--verbose)
		tr -d '\r' <"$TMP/out" | grep -a "^microvm: RSS " | sed "s/^microvm: */MVPEER memory $c (disk + NIC) /"
		;;
	esac
	case $c in
	kvm-host-*) ip link del "$tap" 2>/dev/null ;;
	*) "$NETTOOL" deltap "$tap" ;;
	esac
}

# vsock_fail CASE WHAT: an error line and the end of both sides' output
vsock_fail() {
	echo "MVPEER-ERROR vsock $1 $2"
	tail -n 5 "$TMP/v.log"
	tail -n 10 "$TMP/out"
	echo # the guest's output may end without one: the next MVPEER line at a line's start
}

# The host's nettool reads and writes 1 MiB at a time, as the guest's does.
VCHUNK=1048576

vsock() {
	c=$1 r=$2
	case $c in
	kvm-host-*)
		echo "bench-peers: $c has no vsock device: vsock skipped" >&2
		return
		;;
	microvm_base-*)
		# a base revision from before the device (its type name not in the binary)
		if ! grep -q "virtio-vsock" "$PEERS/microvm-base"; then
			echo "bench-peers: $c has no vsock device: vsock skipped" >&2
			return
		fi
		;;
	esac
	echo "bench-peers: round $r, $c, vsock" >&2
	vs=$TMP/v.sock
	rm -f "$vs" "$vs"_*
	vsock=$vs
	if ! session_start "$c"; then
		vsock=""
		echo "MVPEER-ERROR vsock $c boot"
		tail -n 15 "$TMP/out"
		session_end
		return
	fi
	vsock=""
	# The host's side: microvm's CONNECT protocol on its Unix socket (guest to host: the
	# socket <uds_path>_PORT), or AF_VSOCK to the guest's CID 3 (kvmtool's vhost-vsock).
	case $c in
	lkvm-*) send="vsock-send 3" recv="vsock-recv 5202" ping="vsock-ping 3" ;;
	*) send="uds-send $vs" recv="uds-recv ${vs}_5202" ping="uds-ping $vs" ;;
	esac
	# host -> guest: the guest reads to /dev/null ($send, $recv and $ping are words)
	say "NETTOOL_CHUNK=$VCHUNK nettool vsock-recv 5201 >/dev/null"
	# shellcheck disable=SC2086
	if until_seen "nettool listening on 5201" 30 &&
		NETTOOL_CHUNK=$VCHUNK timeout 300 "$NETTOOL" $send 5201 "$VMIB" 2>"$TMP/v.log" >/dev/null &&
		until_seen "nettool received" 60; then
		echo "MVPEER vsock $c host-to-guest $r $(sed -n 's/^nettool sent .* \([0-9.]*\) MB.s$/\1/p' "$TMP/v.log")"
	else
		vsock_fail "$c" host-to-guest
	fi
	# guest -> host: the host's listener reads to /dev/null
	# shellcheck disable=SC2086
	NETTOOL_CHUNK=$VCHUNK timeout 300 "$NETTOOL" $recv >/dev/null 2>"$TMP/v.log" &
	rpid=$!
	n=0
	while ! grep -q "nettool listening" "$TMP/v.log" && [ $n -lt 100 ]; do
		n=$((n + 1))
		sleep 0.1
	done
	say "NETTOOL_CHUNK=$VCHUNK nettool vsock-send 2 5202 $VMIB; echo VSEND-\$((40+2))=\$?"
	if until_seen "^VSEND-42=" 300 && wait $rpid &&
		grep -q "^nettool received" "$TMP/v.log"; then
		echo "MVPEER vsock $c guest-to-host $r $(sed -n 's/^nettool received .* \([0-9.]*\) MB.s$/\1/p' "$TMP/v.log")"
	else
		vsock_fail "$c" guest-to-host
		kill $rpid 2>/dev/null
		wait $rpid
	fi
	# 64-byte round trips: the host writes, the guest's echo server writes them back
	say "nettool vsock-echo 5203"
	# shellcheck disable=SC2086
	if until_seen "nettool listening on 5203" 30 &&
		timeout 300 "$NETTOOL" $ping 5203 "$VPINGS" 2>"$TMP/v.log" &&
		until_seen "nettool echoed" 30; then
		echo "MVPEER vsock $c rtt-64 $r $(sed -n 's/^nettool rtt count [0-9]* median_us \([0-9.]*\) mean_us \([0-9.]*\).*/\1 \2/p' "$TMP/v.log")"
	else
		vsock_fail "$c" rtt-64
	fi
	session_end
	case $c in
	microvm*)
		# microvm's exit report of the device (connections, resets, drops, interrupts)
		tr -d '\r' <"$TMP/out" | grep -a "^microvm: vsock0: " | sed "s/^microvm: /MVPEER vsockcounters $c /"
		;;
	esac
}

case " $WORK " in *" vsock "*) echo "MVPEER vsockconf mib $VMIB pings $VPINGS chunk $VCHUNK" ;; esac
for r in $(seq "$RUNS"); do
	order=$cases
	[ $((r % 2)) = 0 ] && order=$(echo "$cases" | tr ' ' '\n' | sed '/^$/d' | sed -n '1!G;h;$p')
	for c in $order; do
		for w in $WORK; do
			# CASE:only=net runs that case's net workload alone
			case $c in *:only=*) [ "${c##*:only=}" = "$w" ] || continue ;; esac
			"$w" "$c" "$r"
		done
	done
done
rm -rf "$TMP"
echo "MVBENCH-DONE $HOSTKIND"
