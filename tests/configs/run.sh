#!/bin/sh
# Configuration tests: every bad machine description must fail with exit status 2, a
# message that names the file and line (or the --set argument, or the file alone with a stated
# reason when there is no line), and nothing started, within a time limit; every good one
# (machines/*.ini, tests/configs/good/*.ini) must pass --check and --dump-dtb with a device
# tree that dtc decompiles without warnings (x86-64: --dump-acpi with tables that iasl
# decompiles without warnings, and a vmgenid's AML run by acpiexec).
# A file in bad/ says what it expects in comments: "; expect-line: N" (or "set", or "none")
# and "; expect: MESSAGE" for its first error, "; also: N: MESSAGE" for each further one,
# "; errors: N" for how many there are in all (no follow-on error: each one printed at its
# FILE:LINE), "; expect-more: ... and N more errors" past the 20 printed, "; args: ..." and
# "; fifo: NAME..." for what its runs need. Bad descriptions that are not text (encodings,
# binary data, special files) are made here. The last two lines sum up the bad descriptions
# and count the tests. The command line's shorthands and conveniences are tested by cli.sh
# and shorthand.sh (sourced at the end).
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
# The bad machine descriptions, for the summary line: how many, and of those how many named
# the place (FILE:LINE, the --set argument, or the file with a stated reason when there is no
# line) and the reason, exited with status 2, and answered in time, in every mode tried.
nbad=0
nwhere=0
nexit=0
nanswer=0

# run_bad: one bad machine description, c_file (named c_name), in each of c_modes, with c_args.
# Its first error is c_msg at c_where; c_also holds more ("LINE: message", one a line); with
# c_errors, exactly that many errors are counted, each printed one (at most 20, then c_more)
# at FILE:LINE (or FILE: when c_where has no line).
run_bad() {
	nbad=$((nbad + 1))
	c_placed=1
	c_exit2=1
	c_answered=1
	for mode in $c_modes; do
		[ "$mode" = run ] && mode=
		# shellcheck disable=SC2086
		timeout $limit "$mv" --config "$c_file" $c_args $mode </dev/null >"$tmp/out" \
			2>"$tmp/err"
		status=$?
		case $mode in
		--check) what=$c_name ;;
		--dump-dtb=*) what="$c_name --dump-dtb" ;;
		"") what="$c_name (a run)" ;;
		*) what="$c_name $mode" ;;
		esac
		if [ $status -eq 124 ]; then
			bad "$what: no answer in $limit s"
			c_answered=0 c_exit2=0 c_placed=0
			continue
		fi
		failed=$fail
		[ $status -eq 2 ] || { bad "$what: exit status $status, expected 2"; c_exit2=0; }
		if ! grep -F -- "$c_where" "$tmp/err" | grep -qF -- "$c_msg"; then
			bad "$what: expected '$c_where...$c_msg', got:"
			sed 's/^/    /' "$tmp/err"
			c_placed=0
		fi
		# --list-keys lists the keys of what was read, nothing else; the rest print nothing.
		if [ "$mode" = --list-keys ]; then
			! grep -qvx '[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*' "$tmp/out" ||
				bad "$what: printed more than the keys read despite the error"
		elif [ -s "$tmp/out" ]; then
			bad "$what: printed a machine despite the error"
		fi
		echo "$c_also" | while IFS= read -r a; do
			[ -n "$a" ] || continue
			grep -F -- "$c_file:${a%%: *}: " "$tmp/err" | grep -qF -- "${a#*: }" ||
				echo "$what: expected '$c_file:${a%%: *}: ...${a#*: }'"
		done >"$tmp/also"
		if [ -s "$tmp/also" ]; then
			bad "$(cat "$tmp/also"), got:"
			sed 's/^/    /' "$tmp/err"
			c_placed=0
		fi
		[ -n "$c_errors" ] && count_errors
		[ $fail -eq $failed ] && ok
	done
	nwhere=$((nwhere + c_placed))
	nexit=$((nexit + c_exit2))
	nanswer=$((nanswer + c_answered))
}

# With c_errors: "microvm: FILE: N errors, nothing started" last, N the number expected; the
# lines before it the first 20 errors, each at FILE:LINE (no follow-on error among them),
# then "FILE: ... and N more errors" when there were more.
count_errors() {
	s=s
	[ "$c_errors" -eq 1 ] && s=
	shown=$c_errors
	[ "$shown" -gt 20 ] && shown=20
	if [ "$(tail -n 1 "$tmp/err")" != "microvm: $c_file: $c_errors error$s, nothing started" ]; then
		bad "$what: expected $c_errors error$s, got:"
		sed 's/^/    /' "$tmp/err"
		return
	fi
	sed '$d' "$tmp/err" >"$tmp/errs"
	if [ -n "$c_more" ]; then
		if [ "$(tail -n 1 "$tmp/errs")" != "$c_file: $c_more" ]; then
			bad "$what: expected '$c_file: $c_more' after the errors shown"
			sed 's/^/    /' "$tmp/err"
			return
		fi
		sed -i '$d' "$tmp/errs"
	fi
	if [ "$(wc -l <"$tmp/errs")" -ne "$shown" ]; then
		bad "$what: expected $shown errors printed, got:"
		sed 's/^/    /' "$tmp/err"
		return
	fi
	while IFS= read -r l; do
		case $l in
		"$c_file:"[0-9]*": "*) ;;
		"$c_file: "*) [ "$c_where" = "$c_file: " ] || echo "$l" ;;
		*) echo "$l" ;;
		esac
	done <"$tmp/errs" >"$tmp/noline"
	if [ -s "$tmp/noline" ]; then
		bad "$what: errors without FILE:LINE:"
		sed 's/^/    /' "$tmp/noline"
	fi
}

for f in "$here"/bad/*.ini; do
	c_name=$(basename "$f" .ini)
	line=$(sed -n 's/^; expect-line: //p' "$f")
	c_msg=$(sed -n 's/^; expect: //p' "$f")
	c_args=$(sed -n 's/^; args: //p' "$f")
	c_errors=$(sed -n 's/^; errors: //p' "$f")
	c_more=$(sed -n 's/^; expect-more: //p' "$f")
	fifos=$(sed -n 's/^; fifo: //p' "$f")
	c_modes=--check
	if [ -n "$fifos" ]; then
		# A FIFO cannot be committed: the machine is read from a copy beside the FIFOs it
		# names, by every mode that reads a machine, a run (no KVM reached) included.
		rm -rf "$tmp/fifo" && mkdir "$tmp/fifo" && cp "$f" "$tmp/fifo/"
		f=$tmp/fifo/$c_name.ini
		for n in $fifos; do mkfifo "$tmp/fifo/$n"; done
		c_modes="--check --list-keys --dump-dtb=$tmp/fifo/x.dtb run"
	fi
	c_file=$f
	c_also=$(sed -n 's/^; also: //p' "$f")
	case $line in
	set) c_where="--set " ;;
	none) c_where="$f: " ;;
	*) c_where="$f:$line: " ;;
	esac
	run_bad
done

# Stand-in kernels and initrd (stand_in MACHINE: the --kernel and --initrd arguments for it).
. "$top/tests/lib/stand-in.sh"

# Machine descriptions that cannot be committed as text (encodings, binary data, special
# files), made here: gen_bad NAME LINE MESSAGE [ERRORS] runs $tmp/gen/NAME (made by the
# caller; LINE "none" for an error without one) as a bad machine description.
mkdir "$tmp/gen"
c_file=
gen_bad() {
	c_name=$1
	c_file=${c_file:-$tmp/gen/$1}
	if [ "$2" = none ]; then c_where="$c_file: "; else c_where="$c_file:$2: "; fi
	c_msg=$3
	c_errors=${4:-1}
	c_modes=--check c_args="" c_also="" c_more=""
	run_bad
	c_file=""
}
rpi5=$top/machines/rpi5.ini
printf '\357\273\277' | cat - "$rpi5" >"$tmp/gen/bom.ini"
# Good ones: a UTF-8 byte-order mark is passed over, CRLF line ends are read as LF.
sed 's/$/\r/' "$rpi5" >"$tmp/gen/crlf.ini"
sed 's/$/\r/' "$tmp/gen/bom.ini" >"$tmp/gen/bom-crlf.ini"
for g in bom crlf bom-crlf; do
	# shellcheck disable=SC2046
	if "$mv" --config "$tmp/gen/$g.ini" $(stand_in "$rpi5") --check >"$tmp/out" 2>"$tmp/err" &&
		grep -q "^machine rpi5 ($tmp/gen/$g.ini)" "$tmp/out" && [ ! -s "$tmp/err" ]; then
		ok
	else
		bad "$g: a machine with a byte-order mark or CRLF line ends refused:"
		sed 's/^/    /' "$tmp/err"
	fi
done
utf16="a machine description is UTF-8 text: convert it (iconv -f UTF-16 -t UTF-8)"
iconv -f UTF-8 -t UTF-16LE "$rpi5" | { printf '\377\376'; cat; } >"$tmp/gen/utf16le-bom.ini"
gen_bad utf16le-bom.ini none "the file is UTF-16 (little-endian, with a byte-order mark); $utf16"
iconv -f UTF-8 -t UTF-16BE "$rpi5" | { printf '\376\377'; cat; } >"$tmp/gen/utf16be-bom.ini"
gen_bad utf16be-bom.ini none "the file is UTF-16 (big-endian, with a byte-order mark); $utf16"
iconv -f UTF-8 -t UTF-16LE "$rpi5" >"$tmp/gen/utf16le.ini"
gen_bad utf16le.ini none "the file is UTF-16 (little-endian, without a byte-order mark); $utf16"
iconv -f UTF-8 -t UTF-16BE "$rpi5" >"$tmp/gen/utf16be.ini"
gen_bad utf16be.ini none "the file is UTF-16 (big-endian, without a byte-order mark); $utf16"
iconv -f UTF-8 -t UTF-32 "$rpi5" >"$tmp/gen/utf32.ini"
gen_bad utf32.ini none "the file is UTF-32 (little-endian, with a byte-order mark)"
tr '\n' '\r' <"$rpi5" >"$tmp/gen/cr-only.ini"
gen_bad cr-only.ini none "lines end in a carriage return (CR) alone, as on classic Mac OS"
# One line with a CR in it, in a file of LF lines: said at that line.
sed '8s/$/\r  ; more/' "$rpi5" >"$tmp/gen/stray-cr.ini"
gen_bad stray-cr.ini 8 "a carriage return (CR) at column 10: lines end in LF or CRLF"
# A NUL in the middle of [gic]'s distributor line: said there, and nothing else (the key it
# may have held is not reported missing).
sed '19s/0x/0\x00x/' "$rpi5" >"$tmp/gen/nul-byte.ini"
gen_bad nul-byte.ini 19 "a NUL byte at column 16: a machine description is text (UTF-8)"
sed '1s/host/h\xf4te/' "$rpi5" >"$tmp/gen/latin1.ini"
gen_bad latin1.ini 1 "not UTF-8: byte 0xf4 at column 19"
: >"$tmp/gen/empty.ini"
gen_bad empty.ini none "an empty file: no machine described"
printf '; nothing but comments\n\n# and blank lines\n' >"$tmp/gen/comments.ini"
gen_bad comments.ini none "no [section] in the file (only comments or blank lines)"
c_file=/dev/null gen_bad /dev/null none "a character device that reads nothing: no machine described"
mkdir "$tmp/gen/machines.d"
gen_bad machines.d none "is a directory: --config takes a machine description file"
head -c 4096 "$mv" >"$tmp/gen/elf.ini"
gen_bad elf.ini none "an ELF file, not a machine description (an INI text file)"
gzip -c "$rpi5" >"$tmp/gen/gzip.ini"
gen_bad gzip.ini none "gzip-compressed data, not a machine description"
tail -c +4097 "$mv" | head -c 8192 >"$tmp/gen/random.ini"
gen_bad random.ini none "binary data, not a machine description"
# Endless: read up to the limit, not forever. A FIFO no one writes: not waited on.
c_file=/dev/zero gen_bad /dev/zero none "larger than 16 MiB: not a machine description"
mkfifo "$tmp/gen/config.fifo"
gen_bad config.fifo none "a FIFO that reads nothing: no machine described"
{ sed -n 1,20p "$rpi5"; printf 'cmdline = %0200d\n' 0; } >"$tmp/gen/long-line.ini"
gen_bad long-line.ini 21 "line longer than 198 characters"
# Sections beyond the limit: the one past it is named, nothing more is read.
{
	cat "$rpi5"
	i=0
	while [ $i -lt 4088 ]; do
		printf '[t%d]\ntype = boot-timer\nbase = 0x%x\n' $i $((0x100000000 + i * 0x4000))
		i=$((i + 1))
	done
} >"$tmp/gen/sections.ini"
gen_bad sections.ini $(($(wc -l <"$rpi5") + 4088 * 3 - 2)) \
	"[t4087]: a machine description has at most 4096 sections"

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
# A pipe is read to its end (a FIFO no one writes is not waited on: above).
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

echo "bad machine descriptions: $nbad, with FILE:LINE and a reason: $nwhere, exit 2: $nexit," \
	"no hang: $nanswer"
echo "config: $pass passed, $fail failed"
[ $fail -eq 0 ]
