# shellcheck shell=sh
# Stand-in boot files, so that a machine passes --check before any guest image is built:
# a bare arm64 Image header, a bzImage setup header of boot protocol 2.15 with a 64-bit
# entry, and an initrd. Sourced; needs $tmp. stand_in MACHINE: the --kernel and --initrd
# arguments for MACHINE (an INI file).
{ head -c 56 /dev/zero; printf 'ARM\144'; head -c 8 /dev/zero; } >"$tmp/Image"
head -c 4096 /dev/zero >"$tmp/initrd"
# bzimage FILE CMDLINE_SIZE: a 16 KiB stand-in bzImage whose kernel keeps CMDLINE_SIZE bytes.
bzimage() {
	head -c 16384 /dev/zero >"$1"
	for at in 0x1f1:'\033' 0x1fe:'\125\252' 0x201:'\152HdrS\017\002' 0x211:'\001' \
		0x22c:'\377\377\377\177' 0x236:'\003' 0x258:'\000\000\000\001' \
		0x260:'\000\000\200\000' 0x238:"$(printf '\\%03o\\%03o' $(($2 & 255)) $(($2 >> 8)))"; do
		# shellcheck disable=SC2059
		printf "${at#*:}" | dd of="$1" bs=1 seek=$((${at%%:*})) conv=notrunc 2>/dev/null
	done
}
bzimage "$tmp/bzImage" 2047
stand_in() {
	if grep -q '^arch *= *x86_64' "$1"; then
		echo "--kernel $tmp/bzImage --initrd $tmp/initrd"
	else
		echo "--kernel $tmp/Image --initrd $tmp/initrd"
	fi
}
