#!/bin/sh
# make bench-x86: microvm against QEMU's microvm machine on x86-64, side by side in one run of
# the emulated x86-64 KVM host (tests/bench/x86-qemu.sh inside it). QEMU is this machine's
# Debian qemu-system-x86 with the libraries and firmware it loads, copied into the host.
# Writes build/bench/x86/x86.md (medians with min-max per monitor and kernel) and x86.log.
# BENCH_RUNS (default 5) boots per monitor and kernel.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=build/bench/x86
mkdir -p "$out"
jobs=$(nproc 2>/dev/null || echo 2)
make -s guest-x86_64 build/guest-x86_64/initramfs-poweroff.cpio.gz
make -s -j"$jobs" STATIC=1 build/x86_64/microvm
qemu=$(command -v qemu-system-x86_64)
qdir=$(mktemp -d)
trap 'rm -rf "$qdir"' EXIT
mkdir -p "$qdir/usr/bin" "$qdir/usr/share/qemu"
cp "$qemu" "$qdir/usr/bin/"
for lib in $(ldd "$qemu" | awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }'); do
	mkdir -p "$qdir$(dirname "$lib")"
	cp -L "$lib" "$qdir$lib"
done
cp -L /usr/share/qemu/qboot.rom /usr/share/qemu/bios-microvm.bin "$qdir/usr/share/qemu/"
if [ -z "${BENCH_REPORT_ONLY:-}" ]; then
	BENCH_RUNS=${BENCH_RUNS:-5} QEMU_TREE=$qdir tests/boot/emulated-host.sh x86 bench-x86 \
		>"$out/x86.log" 2>&1
fi
tr -d '\r' <"$out/x86.log" | grep '^MVX86' >"$out/x86.txt" || true
{
	echo "# x86-64 boot: microvm vs QEMU -M microvm (emulated x86-64 KVM host)"
	echo
	echo "$(grep '^MVX86 version' "$out/x86.txt" | cut -d' ' -f4-); $(grep -c '^MVX86 [mq]' "$out/x86.txt") boots," \
		"monitors alternating in each round; 256 MiB, 1 vCPU, initramfs that powers off at init."
	echo "Medians (min-max) in ms from exec, measured outside the monitor (nettool measure);"
	echo "microvm's own --boot-report phases in the last three columns. QEMU's first output is"
	echo "the kernel's real-mode setup (it boots through firmware); microvm enters the 64-bit"
	echo "kernel directly, so the kernel's first line is the comparable point."
	echo
	echo "| monitor | kernel | boots | first console output | kernel's first line | init reached | exit | peak RSS MiB | first KVM_RUN (report) | first console (report) | user space (report) |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	for k in minimal distro; do
		for m in microvm qemu; do
			awk -v m="$m" -v k="$k" '
			function stat(col,   n, i, j, t, v) {
				n = 0
				for (i = 1; i <= rows; i++)
					if ((i, col) in cell && cell[i, col] != "null" && cell[i, col] + 0 >= 0)
						v[++n] = cell[i, col] + 0
				if (!n)
					return "–"
				for (i = 1; i <= n; i++)
					for (j = i + 1; j <= n; j++)
						if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
				med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
				return sprintf(scale[col] ? "%.1f (%.1f-%.1f)" : "%.0f (%.0f-%.0f)",
					med / (scale[col] ? 1024 : 1), v[1] / (scale[col] ? 1024 : 1),
					v[n] / (scale[col] ? 1024 : 1))
			}
			$1 == "MVX86" && $2 == m && $3 == k {
				rows++
				for (c = 5; c <= NF; c++)
					cell[rows, c] = $c
			}
			END {
				if (!rows)
					exit
				scale[9] = 1
				printf "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", m, k,
					rows, stat(6), stat(7), stat(8), stat(5), stat(9), stat(11), stat(12),
					stat(13)
			}' "$out/x86.txt"
		done
	done
	if grep -q '^MVX86-ERROR' "$out/x86.txt"; then
		echo
		echo "Failed boots: $(grep -c '^MVX86-ERROR' "$out/x86.txt") (see x86.log)."
	fi
} >"$out/x86.md"
cat "$out/x86.md"
