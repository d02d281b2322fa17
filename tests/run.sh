#!/bin/sh
# make check: builds everything and runs every test layer, then prints one
# "N passed, N failed" line for the whole run.
#   1. builds: gcc, clang (both -Werror), ASan+UBSan, static aarch64 cross build
#   2. unit tests (ASan+UBSan build)
#   3. configuration tests (ASan+UBSan build of microvm), and a bounded run of every
#      libFuzzer target; make install, the manual pages and make deb (tests/install/run.sh)
#   4. boot tests: natively on an arm64 host with a working /dev/kvm, otherwise inside
#      the emulated KVM hosts (RPi5 stand-in with GICv2, GICv3 server; on an x86-64 machine
#      also an x86-64 host with nested SVM), two at a time
# Set MICROVM_BOOT_TESTS=0 to skip layer 4.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
logs=build/test-logs
mkdir -p "$logs"
total_pass=0
total_fail=0
jobs=$(nproc 2>/dev/null || echo 2)
boot_limit=${BOOT_TEST_SECONDS:-3600}  # each emulated host's boot tests
stall_limit=${BOOT_STALL_SECONDS:-90} # an emulated host's console silent this long: stalled
t_start=$(date +%s)

# add NAME "N passed, N failed"-line
tally() {
	counts=$(echo "$2" | grep -o '[0-9][0-9]* passed, [0-9][0-9]* failed' | tail -n 1)
	p=$(echo "$counts" | cut -d' ' -f1)
	f=$(echo "$counts" | cut -d' ' -f3)
	if [ -z "$p" ]; then
		echo "check: $1 produced no result line (see $logs/)"
		total_fail=$((total_fail + 1))
		return
	fi
	echo "check: $1: $p passed, $f failed"
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

# boot_host, boot_counts, host_report and the helpers they use: emulated hosts that are
# watched for stalls and resumed after one (shared with tests/stress.sh).
. tests/boot/hosts.sh

step() { # NAME COMMAND...: a build step counts as one test
	name=$1
	shift
	t0=$(date +%s)
	if "$@" >"$logs/$name.log" 2>&1; then
		total_pass=$((total_pass + 1))
		echo "check: $name: ok ($(($(date +%s) - t0)) s)"
	else
		total_fail=$((total_fail + 1))
		echo "check: $name: FAILED ($(($(date +%s) - t0)) s)"
		tail -n 30 "$logs/$name.log"
		return 1
	fi
}

step build-gcc make -j"$jobs" CC=gcc all build/sandbox-cost
step build-clang make -j"$jobs" CC=clang OUT=build/clang all build/clang/unit-tests
step build-asan make -j"$jobs" SANITIZE=1 build/asan/microvm build/asan/unit-tests
step build-aarch64 make -j"$jobs" CROSS_COMPILE=aarch64-linux-gnu-
# The x86-64 emulated host runs a static build of this machine's microvm.
x86=""
if [ "$(uname -m)" = x86_64 ]; then
	step build-x86_64 make -j"$jobs" STATIC=1 build/x86_64/microvm && x86=x86
fi
step format make format-check
# No include circles in src/, and no include from a lower layer to a higher one.
step include-graph sh tests/include-graph.sh

if [ -x build/asan/unit-tests ]; then
	# Its failures, a crash or hang with the case it was in, and the counts (so far).
	tests/unit/run.sh build/asan/unit-tests "$logs" >"$logs/unit.result"
	grep -v 'passed, [0-9]* failed$' "$logs/unit.result"
	tally unit "$(tail -n 1 "$logs/unit.result")"
fi
if [ -x build/asan/microvm ]; then
	tests/configs/run.sh build/asan/microvm >"$logs/config.log" 2>&1
	grep -A3 '^FAIL' "$logs/config.log"
	tally config "$(tail -n 1 "$logs/config.log")"
fi

# Every libFuzzer target for a bounded time, side by side (longer: make fuzz FUZZ_SECONDS=N).
step fuzz make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-30}" && grep '^fuzz:' "$logs/fuzz.log"

# make install into a staging directory, the manual pages, the keys, the completion and
# make deb (its packages hold the guest images: without boot tests it is left out).
install_layer() { # [DEB=0]
	env "$@" tests/install/run.sh >"$logs/install.log" 2>&1
	grep -A3 '^FAIL' "$logs/install.log"
	tally install "$(tail -n 1 "$logs/install.log")"
}
[ "${MICROVM_BOOT_TESTS:-1}" != 0 ] || install_layer DEB=0

# What the README and docs/ state is true; with guest images, their examples run.
docs_layer() { # [--examples]
	tests/docs/run.sh build/asan/microvm "$@" >"$logs/docs.log" 2>&1
	grep -A3 '^FAIL' "$logs/docs.log"
	tally docs "$(tail -n 1 "$logs/docs.log")"
}
[ "${MICROVM_BOOT_TESTS:-1}" != 0 ] || docs_layer

if [ "${MICROVM_BOOT_TESTS:-1}" != 0 ]; then
	if step guest-images make guest ${x86:+guest-x86_64}; then
		install_layer
		docs_layer --examples
		if [ "$(uname -m)" = aarch64 ] && [ -w /dev/kvm ] && [ -z "${MICROVM_EMULATED:-}" ]; then
			echo "check: boot tests run natively on this arm64 host"
			MV=build/microvm MVDIR=. NETTOOL=build/guest/nettool sh tests/boot/cases.sh >"$logs/boot-native.log" 2>&1
			grep -E '^MVTEST .* FAIL' "$logs/boot-native.log"
			tally boot-native "$(boot_counts "$logs/boot-native.log")"
		else
			echo "check: boot tests run inside emulated KVM hosts (QEMU TCG with EL2${x86:+, and with nested SVM})"
			# Two emulated hosts at a time on 2 cores (three starved the x86-64 one's single
			# CPU until it lost typed input): the RPi5 one beside the GICv3 one, then the
			# x86-64 host's units in two halves, one after each (they take about as long).
			t_hosts=$(date +%s)
			{
				boot_host rpi5
				[ -z "$x86" ] || boot_host x86 x86-net net,snap,rng,vsock
			} &
			{
				boot_host gicv3
				[ -z "$x86" ] || boot_host x86 x86-boot boot,blk,x86,curl,api,balloon
			} &
			wait
			t_boot=$(date +%s)
			# Figures first, failures last: the end of the output is what gets read.
			hosts="rpi5 gicv3${x86:+ x86-boot x86-net}"
			for kind in $hosts; do
				grep '^MVTIME' "$logs/boot-$kind.log"
			done
			for kind in $hosts; do
				host_report "$kind"
				tally "boot-$kind" "$(boot_counts "$logs/boot-$kind.log")"
			done
			echo "check: the emulated hosts took $((t_boot - t_hosts)) s" \
				"(each: $(cd "$logs" && for k in $hosts; do printf '%s %s s, ' "$k" \
					"$(cat "boot-$k.secs")"; done | sed 's/, $//'))"
		fi
	fi
fi

# kvm-unit-tests, when KUT_SRC names its source (it is no Debian package): the quick tests
# under microvm in both emulated hosts (make kvm-unit-tests runs them all, beside kvmtool).
if [ -n "${KUT_SRC:-}" ] && [ "${MICROVM_BOOT_TESTS:-1}" != 0 ]; then
	KUT_OUT=build/kut-check KVMTOOL_SRC= \
		KUT_ONLY=selftest-setup,selftest-smp,selftest-vectors-kernel,psci,timer,gicv2-ipi,gicv2-active,gicv3-ipi,gicv3-active,its-introspection,pmu-cycle-counter,fpu-context \
		tests/kut/run.sh >"$logs/kut.log" 2>&1
	grep 'microvm fails\|did not finish' "$logs/kut.log"
	tally kvm-unit-tests "$(tail -n 1 "$logs/kut.log")"
fi

# The boot benchmark's report and plots from the boot tests' one-boot smoke run.
if [ "${MICROVM_BOOT_TESTS:-1}" != 0 ] && ls "$logs"/boot-*.log >/dev/null 2>&1; then
	csvs=""
	for log in "$logs"/boot-rpi5.log "$logs"/boot-gicv3.log "$logs"/boot-native.log; do
		[ -f "$log" ] || continue
		sed -n 's/^MVCSV //p' "$log" | tr -d '\r' >"${log%.log}.csv"
		csvs="$csvs ${log%.log}.csv"
	done
	# shellcheck disable=SC2086
	if tests/bench/boot-report.sh "$logs/bench-smoke" "make check smoke run" $csvs \
		>"$logs/bench-smoke.log" 2>&1 &&
		grep -q '^| [a-z0-9]* minimal mmio 1vcpu 128MiB | 1 |' "$logs/bench-smoke/boot.md" &&
		[ -s "$logs/bench-smoke/boot-init.png" ] && [ -s "$logs/bench-smoke/boot-init.svg" ]; then
		tally bench-report "1 passed, 0 failed"
	else
		echo "check: bench-report: no boot.md row or plot from the smoke run"
		tally bench-report "0 passed, 1 failed"
	fi
fi

echo "check: $(($(date +%s) - t_start)) s in all"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
