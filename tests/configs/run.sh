#!/bin/sh
# Configuration tests: every bad machine description must fail with exit status 2, a
# message that names the file and line (or the --set argument), and nothing started;
# every good one (machines/*.ini, tests/configs/good/*.ini) must pass --check and --dump-dtb
# with a device tree that dtc decompiles without warnings (x86-64: --dump-acpi with tables
# that iasl decompiles without warnings, and a vmgenid's AML run by acpiexec).
# The command line's shorthands and conveniences are tested by cli.sh (sourced at the end).
# Usage: run.sh MICROVM
mv=$1
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

# A bad machine answers within this many seconds, or the test fails (a hang, such as an open
# that waits for a FIFO's writer, must not stop the run).
limit=20
for f in "$here"/bad/*.ini; do
	name=$(basename "$f" .ini)
	line=$(sed -n 's/^; expect-line: //p' "$f")
	msg=$(sed -n 's/^; expect: //p' "$f")
	args=$(sed -n 's/^; args: //p' "$f")
	fifos=$(sed -n 's/^; fifo: //p' "$f")
	modes=--check
	if [ -n "$fifos" ]; then
		# A FIFO cannot be committed: the machine is read from a copy beside the FIFOs it
		# names, by every mode that reads a machine, a run (no KVM reached) included.
		rm -rf "$tmp/fifo" && mkdir "$tmp/fifo" && cp "$f" "$tmp/fifo/"
		f=$tmp/fifo/$name.ini
		for n in $fifos; do mkfifo "$tmp/fifo/$n"; done
		modes="--check --list-keys --dump-dtb=$tmp/fifo/x.dtb run"
	fi
	if [ "$line" = set ]; then
		where="--set "
	else
		where="$f:$line: "
	fi
	for mode in $modes; do
		[ "$mode" = run ] && mode=
		# shellcheck disable=SC2086
		timeout $limit "$mv" --config "$f" $args $mode </dev/null >"$tmp/out" 2>"$tmp/err"
		status=$?
		case $mode in
		--check) what=$name ;;
		--dump-dtb=*) what="$name --dump-dtb" ;;
		"") what="$name (a run)" ;;
		*) what="$name $mode" ;;
		esac
		if [ $status -eq 124 ]; then
			bad "$what: no answer in $limit s"
		elif [ $status -ne 2 ]; then
			bad "$what: exit status $status, expected 2"
		elif ! grep -qF -- "$where" "$tmp/err" || ! grep -qF -- "$msg" "$tmp/err"; then
			bad "$what: expected '$where...$msg', got:"
			sed 's/^/    /' "$tmp/err"
		elif [ "$mode" = --list-keys ] &&
			grep -qvx '[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*' "$tmp/out"; then
			bad "$what: printed more than the keys read despite the error"
		elif [ "$mode" != --list-keys ] && [ -s "$tmp/out" ]; then
			bad "$what: printed a machine despite the error"
		else
			ok
		fi
	done
done

# Stand-in kernels (a bare arm64 Image header; a bzImage setup header of boot protocol 2.15
# with a 64-bit entry) and initrd, so that the good machines pass --check before any guest
# image is built. stand_in MACHINE: the --kernel and --initrd arguments for it.
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

# x86_tables FILE NAME [--set ...]: an x86-64 machine has no device tree (--dump-dtb says so,
# exit 2) and its ACPI tables decompile with iasl without errors or warnings.
x86_tables() {
	xf=$1
	xn=$2
	shift 2
	"$mv" --config "$xf" "$@" --dump-dtb "$tmp/$xn.dtb" 2>"$tmp/err"
	st=$?
	if [ $st -ne 2 ] || ! grep -q "has no device tree" "$tmp/err"; then
		bad "$xn: --dump-dtb on an x86_64 machine: exit $st"
		sed 's/^/    /' "$tmp/err"
	else
		ok
	fi
	rm -rf "$tmp/acpi" && mkdir "$tmp/acpi"
	if ! "$mv" --config "$xf" "$@" --dump-acpi "$tmp/acpi" 2>"$tmp/err"; then
		bad "$xn: --dump-acpi failed:"
		sed 's/^/    /' "$tmp/err"
		return
	fi
	for t in RSDP XSDT FACP APIC DSDT; do
		[ -s "$tmp/acpi/$t.dat" ] || bad "$xn: no $t table"
	done
	command -v iasl >/dev/null 2>&1 || return 0
	# iasl reads tables with the common header: the RSDP is checked by the unit tests.
	if (cd "$tmp/acpi" && iasl -d XSDT.dat FACP.dat APIC.dat DSDT.dat \
		$([ -f "$tmp/acpi/MCFG.dat" ] && echo MCFG.dat) >"$tmp/iasl" 2>&1) &&
		! grep -qiE '(error|warning)[^s]' "$tmp/iasl"; then
		ok
	else
		bad "$xn: iasl -d reports:"
		sed 's/^/    /' "$tmp/iasl"
	fi
	x86_vmgenid "$xf" "$xn" "$@"
}

# x86_vmgenid FILE NAME [--set ...]: with a vmgenid, acpiexec runs the DSDT as Linux's drivers
# do: \_SB.VGEN has the id vmgenid.c matches and an ADDR that gives the ID's address as a
# package of two integers; the Generic Event Device's _EVT, called with the GSI, notifies it.
x86_vmgenid() {
	vn=$2
	vf=$1
	shift 2
	# shellcheck disable=SC2046
	if ! "$mv" --config "$vf" $(stand_in "$vf") "$@" --check >"$tmp/out" 2>"$tmp/err"; then
		bad "$vn: --check failed:"
		sed 's/^/    /' "$tmp/err"
		return
	fi
	vg=$(sed -n 's/^  [^ ]*: vmgenid at 0x\([0-9a-f]*\), irq \([0-9]*\).*/\1 \2/p' "$tmp/out")
	[ -n "$vg" ] || return 0
	command -v acpiexec >/dev/null 2>&1 || return 0
	addr=$(printf '%016X' "0x${vg% *}")
	(cd "$tmp/acpi" && timeout 60 acpiexec -b "evaluate \_SB.VGEN._HID; \
		evaluate \_SB.VGEN.ADDR; evaluate \_SB.GED0._EVT ${vg#* }" DSDT.dat) \
		>"$tmp/acpiexec" 2>&1
	# ADDR: the low 32 bits first.
	ints=$(sed -n '/^Evaluating .*ADDR$/,/^Evaluating/s/^ *\[Integer\] = //p' "$tmp/acpiexec" |
		tr '\n' ' ')
	if grep -q 'String\] Length 08 = "VMGENCTR"' "$tmp/acpiexec" &&
		grep -q 'Package\] Contains 2 Elements' "$tmp/acpiexec" &&
		[ "$ints" = "00000000${addr#????????} 00000000${addr%????????} " ] &&
		grep -q 'Device Notify on \[VGEN\].* Value 0x80' "$tmp/acpiexec" &&
		! grep -qiE '(error|warning|exception)[^s]' "$tmp/acpiexec"; then
		ok
	else
		bad "$vn: acpiexec on the vmgenid's ADDR and the GED's _EVT:"
		sed 's/^/    /' "$tmp/acpiexec"
	fi
}


for f in "$top"/machines/*.ini "$here"/good/*.ini; do
	[ -f "$f" ] || continue
	name=$(basename "$f" .ini)
	# shellcheck disable=SC2046
	if ! "$mv" --config "$f" $(stand_in "$f") --check >"$tmp/out" 2>"$tmp/err"; then
		bad "$name: --check failed:"
		sed 's/^/    /' "$tmp/err"
		continue
	fi
	ok
	if grep -q '^arch *= *x86_64' "$f"; then
		x86_tables "$f" "$name"
		continue
	fi
	if ! "$mv" --config "$f" --kernel "$tmp/Image" --initrd "$tmp/initrd" \
		--dump-dtb "$tmp/$name.dtb" 2>"$tmp/err"; then
		bad "$name: --dump-dtb failed:"
		sed 's/^/    /' "$tmp/err"
	elif ! dtc -I dtb -O dts -o "$tmp/$name.dts" "$tmp/$name.dtb" 2>"$tmp/dtc" ||
		[ -s "$tmp/dtc" ]; then
		bad "$name: dtc reports:"
		sed 's/^/    /' "$tmp/dtc"
	else
		ok
	fi
done

# Every machine with a disk and a NIC on each transport (and PCI with MSI-X and with INTx):
# the device tree must decompile without warnings and, for an arm64 machine, come out
# byte-identical to the one recorded in dtb.sha256.
same_dtb() { # DTB NAME
	want=$(sed -n "s/^\([0-9a-f]*\) $2\$/\1/p" "$here/dtb.sha256")
	have=$(sha256sum <"$1" | cut -c1-64)
	if [ -z "$want" ]; then
		bad "$2: no device tree recorded in tests/configs/dtb.sha256 (sha256 $have)"
	elif [ "$want" != "$have" ]; then
		bad "$2: the device tree changed (sha256 $have, recorded $want)"
	else
		ok
	fi
}
for f in "$top"/machines/*.ini; do
	name=$(basename "$f" .ini)
	if grep -q '^arch *= *x86_64' "$f"; then
		for variant in mmio pci pci-intx; do
			tr=${variant%-intx}
			msi=on
			[ "$variant" = pci-intx ] && msi=off
			x86_tables "$f" "$name-$variant" --set blk0.type=virtio-blk \
				--set blk0.path="$tmp/initrd" --set blk0.transport="$tr" \
				--set pci.msi=$msi --set net0.type=virtio-net --set net0.transport="$tr"
		done
		continue
	fi
	same_dtb "$tmp/$name.dtb" "$name"
	for variant in mmio pci pci-intx; do
		tr=${variant%-intx}
		msi=on
		[ "$variant" = pci-intx ] && msi=off
		if ! "$mv" --config "$f" --kernel "$tmp/Image" --initrd "$tmp/initrd" \
			--set blk0.type=virtio-blk --set blk0.path="$tmp/initrd" \
			--set blk0.transport="$tr" --set pci.msi=$msi \
			--set net0.type=virtio-net --set net0.transport="$tr" \
			--dump-dtb "$tmp/$name-$variant.dtb" 2>"$tmp/err"; then
			bad "$name with a $variant disk and NIC: --dump-dtb failed:"
			sed 's/^/    /' "$tmp/err"
		elif ! dtc -I dtb -O dts -o "$tmp/$name.dts" "$tmp/$name-$variant.dtb" \
			2>"$tmp/dtc" || [ -s "$tmp/dtc" ]; then
			bad "$name with a $variant disk and NIC: dtc reports:"
			sed 's/^/    /' "$tmp/dtc"
		else
			ok
			same_dtb "$tmp/$name-$variant.dtb" "$name-$variant"
		fi
	done
done

# --set overrides are validated exactly like the file and change the resolved machine.
"$mv" --config "$top/machines/rpi5.ini" --set machine.vcpus=2 --set memory.size=2G \
	--kernel "$tmp/Image" --initrd "$tmp/initrd" --check >"$tmp/out" 2>&1
if grep -q "vcpus 2, memory 2048 MiB" "$tmp/out"; then ok; else bad "--set override not applied"; fi
"$mv" --config "$top/machines/rpi5.ini" --set machine.vcpus=9 --check >/dev/null 2>"$tmp/err"
if [ $? -eq 2 ] && grep -qF -- "--set machine.vcpus: 9 vCPUs, but GICv2 supports at most 8" "$tmp/err"; then ok; else bad "--set vcpus=9 on GICv2 accepted"; fi
"$mv" >/dev/null 2>&1
if [ $? -eq 2 ]; then ok; else bad "missing --config is not exit 2"; fi
"$mv" --config "$tmp/nonexistent.ini" --check >/dev/null 2>"$tmp/err"
if [ $? -eq 2 ] && grep -q "nonexistent.ini: No such file" "$tmp/err"; then ok; else bad "missing config file"; fi
# A FIFO no one writes, given as the machine, is not waited on; a pipe is read to its end.
mkfifo "$tmp/config.fifo"
timeout $limit "$mv" --config "$tmp/config.fifo" --check >/dev/null 2>"$tmp/err"
st=$?
if [ $st -eq 2 ]; then ok; else bad "a FIFO as --config: exit $st (124: no answer in $limit s)"; fi
if sed '' "$top/machines/rpi5.ini" | "$mv" --config /dev/stdin --kernel "$tmp/Image" \
	--initrd "$tmp/initrd" --check >"$tmp/out" 2>"$tmp/err" &&
	grep -q "^machine rpi5 (/dev/stdin)" "$tmp/out"; then ok; else
	bad "a pipe as --config"; sed 's/^/    /' "$tmp/err"; fi
"$mv" --config "$top/machines/rpi5.ini" --kernel "$tmp/none" --check >/dev/null 2>"$tmp/err"
if [ $? -eq 2 ] && grep -qF -- "--set boot.kernel: '$tmp/none' does not exist" "$tmp/err"; then ok; else bad "missing kernel"; fi

# A disk image this user may only read: --dump-dtb works (with a warning that a run needs
# readonly = on); --check, which checks what a run would, and a run are configuration errors. As root, as nobody (root may
# write any file); the binary, machine and image go to a directory nobody can reach.
ro=$(mktemp -d /tmp/mvro-XXXXXX)
chmod 1777 "$ro"
cp "$mv" "$top/machines/rpi5.ini" "$tmp/Image" "$ro/"
head -c 1048576 /dev/zero >"$ro/ro.img"
chmod 444 "$ro/ro.img" "$ro/Image"
as_user=""
[ "$(id -u)" = 0 ] && as_user="setpriv --reuid=65534 --regid=65534 --clear-groups"
disk="--set blk0.type=virtio-blk --set blk0.path=$ro/ro.img --kernel $ro/Image --initrd="
# shellcheck disable=SC2086
$as_user "$ro/$(basename "$mv")" --config "$ro/rpi5.ini" $disk --check >"$tmp/out" 2>"$tmp/err"
st=$?
if [ $st -eq 2 ] && [ ! -s "$tmp/out" ] && grep -qF -- "--set blk0.path: cannot open '$ro/ro.img' for writing: Permission denied (readonly = on" "$tmp/err"; then ok; else
	bad "--check on a read-only image: exit $st"; sed 's/^/    /' "$tmp/err"; fi
# shellcheck disable=SC2086
$as_user "$ro/$(basename "$mv")" --config "$ro/rpi5.ini" $disk --dump-dtb "$ro/ro.dtb" \
	2>"$tmp/err"
st=$?
if [ $st -eq 0 ] && [ -s "$ro/ro.dtb" ] &&
	grep -qF "is not writable: a run needs readonly = on" "$tmp/err"; then ok; else
	bad "--dump-dtb on a read-only image: exit $st"; sed 's/^/    /' "$tmp/err"; fi
# shellcheck disable=SC2086
$as_user "$ro/$(basename "$mv")" --config "$ro/rpi5.ini" $disk </dev/null >/dev/null 2>"$tmp/err"
st=$?
if [ $st -eq 2 ] && grep -qF -- "--set blk0.path: cannot open '$ro/ro.img' for writing" "$tmp/err"; then ok; else
	bad "running a read-only image without readonly = on: exit $st"; sed 's/^/    /' "$tmp/err"; fi
# Becoming another user needs root: a run says so before anything starts.
if [ -n "$as_user" ]; then
	$as_user "$ro/$(basename "$mv")" --config "$ro/rpi5.ini" --user root --kernel "$ro/Image" \
		--initrd= </dev/null >/dev/null 2>"$tmp/err"
	st=$?
	if [ $st -eq 2 ] && grep -qF -- "--set machine.user: becoming 'root' needs root" "$tmp/err"; then
		ok; else bad "--user root as nobody: exit $st"; sed 's/^/    /' "$tmp/err"; fi
fi
rm -rf "$ro"

# An unwritable --boot-report path stops microvm before anything starts.
"$mv" --config "$top/machines/rpi5.ini" --kernel "$tmp/Image" --initrd "$tmp/initrd" \
	--boot-report "$tmp/no/such/dir/report.json" </dev/null >/dev/null 2>"$tmp/err"
if [ $? -eq 2 ] && grep -qF -- "--boot-report $tmp/no/such/dir/report.json: there is no directory $tmp/no/such/dir" "$tmp/err"; then ok; else bad "unwritable --boot-report"; fi

# --list-keys: the keys each section accepts, a device's included; a bad file lists nothing.
truncate -s 1M "$tmp/list.img"
"$mv" --config "$top/machines/rpi5.ini" --set blk0.type=virtio-blk --set blk0.path="$tmp/list.img" \
	--list-keys >"$tmp/out" 2>"$tmp/err"
if [ $? -eq 0 ] && [ ! -s "$tmp/err" ] && grep -qx gic.v2m_irq_base "$tmp/out" &&
	grep -qx blk0.ioeventfd "$tmp/out" && grep -qx pci.mmio64_size "$tmp/out" &&
	[ "$(sort "$tmp/out" | uniq -d)" = "" ]; then ok; else bad "--list-keys on rpi5.ini + blk0"; fi
# A bad file: exit 2, the error, and the keys of what was read (here [machine]'s) only.
"$mv" --config "$here/bad/bad-align.ini" --list-keys >"$tmp/out" 2>"$tmp/err"
if [ $? -eq 2 ] && grep -qx machine.align "$tmp/out" &&
	! grep -qv '^[a-z0-9_-]*\.[a-z0-9_]*$' "$tmp/out" &&
	grep -qF "bad-align.ini:6: [machine] align" "$tmp/err"; then ok; else bad "--list-keys on a bad file"; fi

# A machine of the other architecture than this host's KVM: exit 1 and why, before anything
# is read or opened (the kernel here is not even a kernel).
other=$top/machines/rpi5.ini
[ "$(uname -m)" = aarch64 ] && other=$top/machines/x86_64.ini
"$mv" --config "$other" --kernel "$tmp/list.img" --initrd= </dev/null >/dev/null 2>"$tmp/err"
if [ $? -eq 1 ] && grep -qE "is an (arm64|x86_64) machine, and this (host's KVM runs|build runs no)" \
	"$tmp/err"; then ok; else bad "a machine of another architecture"; sed 's/^/    /' "$tmp/err"; fi

# Command-line cases: conflicts, outputs, --check's boot files, command-line limits.
. "$here/cli.sh"
# The command line's conveniences: shorthands, machines by name, --json, --list-values.
. "$here/shorthand.sh"

echo "config: $pass passed, $fail failed"
[ $fail -eq 0 ]
