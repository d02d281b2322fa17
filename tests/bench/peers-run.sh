#!/bin/sh
# make bench-peers: builds kvmtool and kvm-host for arm64 (tests/bench/build-peers.sh, from
# KVMTOOL_SRC and KVM_HOST_SRC) and runs tests/bench/peers.sh in the emulated RPi5 host (or
# natively on an arm64 board with KVM; BENCH_KINDS picks hosts), writing build/bench/peers.md,
# peers-KIND.csv and plots. MICROVM_BASE=REV adds microvm built at git revision REV as more
# cases (microvm_base-mmio, microvm_base-pci): a before/after in the same run.
# PEER_IMAGE=bdev puts the disk image on the emulated host's own block device (a virtio disk
# of QEMU's) instead of a file in its memory (tmpfs). BENCH_REPORT_ONLY=1 rewrites the report
# from the logs of the last run.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=build/bench
. tests/bench/hosts.sh
BENCH_KINDS=${BENCH_KINDS:-rpi5}
bench_setup "$out"
bins=$out/peers-bin
cache=${MICROVM_CACHE:-$HOME/.cache/microvm}
if [ -z "${BENCH_REPORT_ONLY:-}" ]; then
	tests/bench/build-peers.sh "$bins"
	rm -f "$bins/microvm-base" "$bins/microvm-base.version"
	if [ -n "${MICROVM_BASE:-}" ]; then
		rev=$(git rev-parse --short "$MICROVM_BASE")
		base=$cache/microvm-base-$rev
		if [ ! -x "$base/microvm" ]; then
			echo "bench-peers: building microvm $rev" >&2
			wt=$(mktemp -d)
			git worktree add -q --detach "$wt" "$rev"
			make -s -C "$wt" -j"$(nproc)" CROSS_COMPILE=aarch64-linux-gnu- >/dev/null
			mkdir -p "$base"
			cp "$wt/build/aarch64/microvm" "$base/microvm"
			git worktree remove --force "$wt"
		fi
		cp "$base/microvm" "$bins/microvm-base"
		echo "$rev" >"$bins/microvm-base.version"
	fi
	export PEERS_DIR="$top/$bins"
	if [ "${PEER_IMAGE:-tmpfs}" = bdev ]; then
		# the tools file system, then fio's region, as peers.sh makes it in tmpfs
		cp build/guest/tools.ext4 "$out/peers-disk.img"
		truncate -s 384M "$out/peers-disk.img"
		export L1_DISK="$top/$out/peers-disk.img"
	fi
fi

# stats: per group key (the first field), the median and min-max of the second
stats() {
	sort -k1,1 -k2,2g | awk '{
		k = $1; for (i = 2; i < NF; i++) k = k " " $i
		if (k != last && n) { out(); n = 0 }
		last = k; v[++n] = $NF
	}
	function out(   m) {
		m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		printf "%s %s %s %s\n", last, m, v[1], v[n]
	}
	END { if (n) out() }' | sort -k1,1 -s
}

for kind in $BENCH_KINDS; do
	log=$out/peers-$kind.log
	[ -n "${BENCH_REPORT_ONLY:-}" ] || bench_in_host peers "$kind" "$log"
	where=$(bench_where "$log")
	tr -d '\r' <"$log" | grep '^MVPEER ' >"$out/peers-$kind.raw" || true
	csv=$out/peers-$kind.csv
	{
		echo "host,workload,case,item,run,value1,value2,value3"
		awk -v k="$kind" '$2 ~ /^(boot|blk|net|vsock)$/ {
			printf "%s,%s,%s,%s,%s,%s,%s,%s\n", k, $2, $3, $4, $5, $6, $7, $8 }' \
			"$out/peers-$kind.raw"
	} >"$csv"
	raw=$out/peers-$kind.raw
	# case order: as they ran in round 1
	order=$(awk '$2 ~ /^(boot|blk|net|vsock)$/ && $5 == 1 && !seen[$3]++ { print $3 }' "$raw")
	# blk jobs: those that ran, in the order they ran
	JOBS=$(awk '$2 == "blk" && !seen[$4]++ { print $4 }' "$raw")
	# row LABEL FILE: one Markdown row, a cell per case ("median (min-max)" or -)
	row() {
		printf "| %s |" "$1"
		for c in $order; do
			cell=$(awk -v c="$c" '$1 == c { if ($3 == $4) printf "%s", $2; else printf "%s (%s-%s)", $2, $3, $4 }' "$2")
			printf " %s |" "${cell:--}"
		done
		echo
	}
	# header LABEL: a table's first two rows, a column per case
	header() {
		printf "| %s |" "$1"
		for c in $order; do printf " %s |" "$c"; done
		printf "\n| --- |"
		for c in $order; do printf " --- |"; done
		echo
	}
	# vsock_table RAW: the vsock workload, a row per case (median (min-max) over rounds), then
	# each microvm case's medians over kvmtool's (vhost-vsock) on the same transport
	vsock_table() {
		echo "vsock: one stream each way ($(vsock_conf mib) MiB, 1 MiB reads and writes; MB/s as"
		echo "the host's side timed it) and 64-byte round trips from the host to an echo server in"
		echo "the guest ($(vsock_conf pings) per round, after 10 not counted). microvm's device runs in"
		echo "userspace (the host side through uds_path's CONNECT protocol), kvmtool's is the kernel's"
		echo "vhost-vsock (the host side AF_VSOCK)."
		echo
		echo "| case | host to guest MB/s | guest to host MB/s | round trip median (us) | round trip mean (us) |"
		echo "| --- | --- | --- | --- | --- |"
		for c in $order; do
			grep -q "^MVPEER vsock $c " "$1" || continue
			printf "| %s |" "$c"
			for m in host-to-guest:6 guest-to-host:6 rtt-64:6 rtt-64:7; do
				cell=$(awk -v c="$c" -v i="${m%:*}" -v f="${m#*:}" \
					'$2 == "vsock" && $3 == c && $4 == i { print c, $f }' "$1" | stats |
					awk '{ if ($3 == $4) printf "%s", $2; else printf "%s (%s-%s)", $2, $3, $4 }')
				printf " %s |" "${cell:--}"
			done
			echo
		done
		echo
		echo "Userspace over vhost-vsock, medians (throughput: above 1 is faster; round trip: below"
		echo "1 is faster):"
		echo
		echo "| cases | host to guest | guest to host | round trip median |"
		echo "| --- | --- | --- | --- |"
		for c in $order; do
			case $c in microvm*-mmio | microvm*-pci) ;; *) continue ;; esac
			p=lkvm-${c##*-}
			grep -q "^MVPEER vsock $p " "$1" && grep -q "^MVPEER vsock $c " "$1" || continue
			printf "| %s / %s |" "$c" "$p"
			for i in host-to-guest guest-to-host rtt-64; do
				awk -v c="$c" -v p="$p" -v i="$i" '$2 == "vsock" && ($3 == c || $3 == p) && $4 == i { print $3, $6 }' "$1" |
					stats | awk -v c="$c" -v p="$p" '$1 == c { a = $2 } $1 == p { b = $2 }
						END { if (a != "" && b > 0) printf " %.2f |", a / b; else printf " - |" }'
			done
			echo
		done
		if grep -q " vsockcounters " "$1"; then
			echo
			echo "microvm's vsock device at exit (--verbose), per session:"
			echo
			awk '$2 == "vsockcounters" { $1 = ""; $2 = ""; print "-" $0 }' "$1" | sort | uniq -c |
				awk '{ n = $1; $1 = ""; print $0 (n > 1 ? " (" n " sessions)" : "") }' | sed 's/^ //'
		fi
	}
	# vsock_conf mib|pings: the workload's settings, as the log's MVPEER vsockconf line gives them
	vsock_conf() { awk -v k="$1" '$2 == "vsockconf" { for (i = 3; i < NF; i++) if ($i == k) print $(i + 1) }' "$raw" | head -n 1; }
	# count_tables RAW: per workload, what each request (blk) or MiB (net) cost, medians over
	# the timed rounds: KVM's exits (debugfs), the interrupts the guest took, the monitor's
	# wake-ups and CPU time, and (one counted run under strace) its system calls
	count_tables() {
		echo "Counts per request (blk) or per MiB moved (net), medians over the rounds: they do not"
		echo "depend on how busy the machine was (the times in microseconds do, less than the"
		echo "timed figures). KVM's statistics of the VM (debugfs) and the monitor's threads'"
		echo "voluntary context switches (wake-ups), CPU time and time runnable but waiting for a"
		echo "CPU (schedstat; a vCPU thread's CPU time includes the guest's) are read from outside"
		echo "just before and just after each job while the guest waits, the guest's virtio"
		echo "interrupts from its /proc/interrupts; the system calls come from one more run of"
		echo "each job under strace -c -f (round 1, not timed). The floor: one exit per kick and"
		echo "none to user space when the kick is an ioeventfd and the interrupt an irqfd;"
		echo "event-index suppression takes kicks and interrupts below one per request at depth."
		echo
		for item in $(for j in $JOBS; do echo blk-$j; done) \
			net-host-to-guest net-guest-to-host; do
			grep -q " count [^ ]* $item " "$1" || continue
			unit=request
			case $item in net-*) unit=MiB ;; esac
			header "$item, per $unit"
			awk -v i=$item '$2 == "count" && $4 == i && $6 > 0 { print $7, $3, $8 / $6 }' "$1" |
				awk '{ print $1 "|" $2, $3 }' | stats | tr '|' ' ' >"$t.pr"
			awk -v i=$item '$2 == "syscall" && $4 == i && $5 > 0 { print $6, $3, $7 / $5; tot[$3] += $7 / $5 }
				END { for (c in tot) print "syscalls", c, tot[c] }' "$1" >>"$t.pr"
			for name in exits mmio_exit_user mmio_exit_kernel wfi_exit_stat halt_wakeup signal_exits irqs \
				wake_vcpu wake_other cpu_vcpu cpu_other runq_vcpu runq_other syscalls \
				$(awk '$1 !~ /^[a-z_]*(exit|wake|irqs|syscalls)/ && $1 !~ /^(cpu|runq)_/ && $3 >= 0.05 { print $1 }' "$t.pr" | sort -u); do
				grep -q "^$name " "$t.pr" || continue
				case $name in
				exits) label="KVM exits, all" ;;
				mmio_exit_user) label="exits to the monitor (MMIO)" ;;
				mmio_exit_kernel) label="MMIO exits served in the kernel (ioeventfd)" ;;
				wfi_exit_stat) label="WFI exits (the vCPU idles)" ;;
				halt_wakeup) label="vCPU woken from halt" ;;
				signal_exits) label="exits for a signal" ;;
				irqs) label="virtio interrupts the guest took" ;;
				wake_vcpu) label="monitor wake-ups, vCPU threads" ;;
				wake_other) label="monitor wake-ups, other threads" ;;
				cpu_vcpu) label="CPU time, vCPU threads, guest included (us)" ;;
				cpu_other) label="CPU time, other threads (us)" ;;
				runq_vcpu) label="runnable, waiting for a CPU, vCPU threads (us)" ;;
				runq_other) label="runnable, waiting for a CPU, other threads (us)" ;;
				syscalls) label="monitor system calls, all" ;;
				*) label="- $name" ;;
				esac
				printf "| %s |" "$label"
				for c in $order; do
					printf " %s |" "$(awk -v n="$name" -v c="$c" '$1 == n && $2 == c { printf "%.2f", $3 }' "$t.pr" | head -n 1)"
				done
				echo
			done
			echo
		done
		echo "microvm names its vCPU threads (vcpuN), kvmtool too (kvm-vcpu-N); kvm-host does not:"
		echo "its wake-ups are all under other threads."
		echo
	}
	t=$(mktemp)
	{
		echo "## $kind: $where"
		echo
		awk '$2 == "image" { k = $3; $1 = $2 = $3 = ""; sub(/^ */, ""); print "The disk image (" k "): " $0 "." }' "$raw" | head -n 1
		for v in lkvm kvm-host microvm-base; do
			awk -v v=$v '$2 == "version" && $3 == v { print "- " v ": " $4 }' "$raw"
		done
		echo
		if grep -q " probe " "$raw"; then
			awk '$2 == "probe" { print "all", $6 }' "$raw" | stats | while read -r _ med lo hi; do
				echo "The host's own speed, probed at each counted job's edges while the guest"
				echo "waits (nettool speed: 256 MiB copied in memory): median $med MB/s, $lo-$hi."
				echo "Under emulation it follows the machine under the host; a timed figure that moves"
				echo "far more than it between rounds moved for reasons of its own."
			done
			echo
		fi
		header "measure (median, min-max over runs)"
		for job in $JOBS; do
			case $job in
			*-1m*)
				# large requests: the throughput
				awk -v j=$job '$2 == "blk" && $4 == j { print $3, $6 }' "$raw" | stats >"$t"
				[ -s "$t" ] && row "blk $job MB/s" "$t"
				continue
				;;
			esac
			awk -v j=$job '$2 == "blk" && $4 == j { print $3, $7 }' "$raw" | stats >"$t"
			[ -s "$t" ] || continue
			row "blk $job IOPS" "$t"
			if [ $job = randread-qd1 ]; then
				awk '$2 == "blk" && $4 == "randread-qd1" && $7 { printf "%s %.0f\n", $3, 1e6 / $7 }' "$raw" | stats >"$t"
				row "blk $job time per request, 1/IOPS (us)" "$t"
			fi
		done
		for dir in host-to-guest guest-to-host; do
			awk -v d=$dir '$2 == "net" && $4 == d { print $3, $6 }' "$raw" | stats >"$t"
			[ -s "$t" ] && row "net TCP $dir MB/s" "$t"
		done
		for dir in host-to-guest guest-to-host; do
			awk -v d=$dir '$2 == "vsock" && $4 == d { print $3, $6 }' "$raw" | stats >"$t"
			[ -s "$t" ] && row "vsock stream $dir MB/s" "$t"
		done
		awk '$2 == "vsock" && $4 == "rtt-64" { print $3, $6 }' "$raw" | stats >"$t"
		[ -s "$t" ] && row "vsock 64-byte round trip, median (us)" "$t"
		for k in minimal distro; do
			awk -v k=$k '$2 == "boot" && $4 == k { print $3, $6 }' "$raw" | stats >"$t"
			[ -s "$t" ] && row "boot $k kernel, exec to exit (ms)" "$t"
			awk -v k=$k '$2 == "boot" && $4 == k { printf "%s %.1f\n", $3, $7 / 1024 }' "$raw" | stats >"$t"
			[ -s "$t" ] && row "boot $k kernel, peak RSS (MiB)" "$t"
		done
		echo
		if grep -q " vsock " "$raw"; then
			vsock_table "$raw"
			echo
		fi
		if grep -q " count " "$raw"; then
			count_tables "$raw"
		fi
		if grep -q " setup " "$raw"; then
			echo "microvm's set-up (--boot-report of the boot runs, medians): the phases in ms"
			echo "from exec, and the resident memory at exit in KiB (the monitor's own: all of it"
			echo "less guest RAM):"
			echo
			echo "| case | kernel | boot files opened | VM built | images loaded | first KVM_RUN | RSS | guest RAM RSS | monitor RSS |"
			echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
			for i in 1 2 3 4 5 6 7; do
				awk -v i=$i '$2 == "setup" { print $3 "|" $4, $(5 + i) }' "$raw" | stats |
					awk -v i=$i '{ print $1, i, $2 }'
			done | sort -k1,1 -k2n,2 | awk '{
				if ($1 != k) { if (k != "") print line " |"; k = $1; split($1, p, "|"); line = "| " p[1] " | " p[2] }
				line = line " | " sprintf($2 <= 4 ? "%.1f" : "%.0f", $3) } END { if (k != "") print line " |" }'
			echo
		fi
		if grep -q " counters " "$raw"; then
			echo "microvm's own counters over the whole blk session (requests, register exits,"
			echo "event-loop wake-ups for kicks and completions, io_uring_enter calls, interrupts):"
			echo
			awk '$2 == "counters" { $1 = ""; $2 = ""; print "-" $0 }' "$raw" | sort | uniq
			echo
		fi
		if grep -q " memory " "$raw"; then
			echo "microvm's resident memory at the end of the blk session (--verbose), and the"
			echo "mappings of its own that hold 64 KiB or more:"
			echo
			awk '$2 == "memory" { $1 = ""; $2 = ""; print "-" $0 }' "$raw" | uniq
			echo
		fi
		grep -q "MVPEER-ERROR" "$log" && {
			echo "Errors:"
			echo
			tr -d '\r' <"$log" | grep "^MVPEER-ERROR" | sed 's/^/- /'
			echo
		}
	} >"$out/peers-$kind.md"
	# Plots: the block IOPS and the boot times, per case.
	for what in randread-qd1 randread-qd32 randread-qd256; do
		awk -v j=$what '$2 == "blk" && $4 == j { print $3, $7 }' "$raw" | stats |
			awk -v j=$what '{ printf "\"%s\\n%s\" %s %s %s\n", $1, j, $2, $3, $4 }'
	done >"$t"
	[ -s "$t" ] && tests/bench/plot-bars.sh "$t" "$out/peers-$kind-blk" \
		"virtio-blk 4 KiB random read IOPS, per monitor and queue depth — $where" "IOPS"
	awk '$2 == "boot" { print $3 "\\n" $4, $6 }' "$raw" | stats |
		awk '{ printf "\"%s\" %s %s %s\n", $1, $2, $3, $4 }' >"$t"
	[ -s "$t" ] && tests/bench/plot-bars.sh "$t" "$out/peers-$kind-boot" \
		"boot to init and power off (exec to exit), per monitor and kernel — $where" "ms"
	rm -f "$t" "$t.pr"
done
{
	echo "# Peer comparison ($(date -u +%Y-%m-%d), $(uname -m) host $(uname -r))"
	echo
	echo "microvm against kvmtool and kvm-host: the same kernel, initramfs, disk and workloads,"
	echo "each monitor in turn in every round (odd rounds in order, even rounds reversed). A"
	echo "256 MiB guest with 1 vCPU (kvm-host: its fixed 1 GiB). Cells: median (min-max)."
	echo "Numbers from an emulated host measure the emulation as much as the monitors: compare"
	echo "the monitors with each other, not with other hosts. CSV next to this file."
	echo
	for kind in $BENCH_KINDS; do cat "$out/peers-$kind.md"; done
} >"$out/peers.md"
cat "$out/peers.md"
