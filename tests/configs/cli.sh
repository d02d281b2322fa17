# shellcheck shell=sh disable=SC2154
# Command-line cases, sourced by run.sh (its mv, tmp, top, limit, ok, bad, the stand-in
# kernels $tmp/Image and $tmp/bzImage, bzimage and $tmp/initrd): README examples on a fresh
# clone, --check finding every boot file a run would not start with, the kernel command
# line's one limit, options that conflict, unwritable outputs (exit 2, before anything), and
# no output file left half-written. None needs KVM.

# expect STATUS MESSAGE NAME COMMAND...: COMMAND exits with STATUS and says MESSAGE (a fixed
# string; "" for none) on stderr; when it fails, it prints nothing on stdout.
expect() {
	e_st=$1
	e_msg=$2
	e_name=$3
	shift 3
	timeout "$limit" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	st=$?
	if [ $st -ne "$e_st" ]; then
		bad "$e_name: exit status $st, expected $e_st"
		sed 's/^/    /' "$tmp/err"
	elif [ -n "$e_msg" ] && ! grep -qF -- "$e_msg" "$tmp/err"; then
		bad "$e_name: expected '$e_msg', got:"
		sed 's/^/    /' "$tmp/err"
	elif [ "$e_st" -ne 0 ] && [ -s "$tmp/out" ]; then
		bad "$e_name: printed on stdout despite the error"
	else
		ok
	fi
}

# yes NAME COMMAND...: a check that passes when COMMAND succeeds; no: when it fails.
yes() {
	y_name=$1
	shift
	if "$@"; then ok; else bad "$y_name"; fi
}
no() {
	n_name=$1
	shift
	if "$@"; then bad "$n_name"; else ok; fi
}

# The binary from any directory.
case $mv in
/*) amv=$mv ;;
*) amv=$(pwd)/$mv ;;
esac

# A fresh clone: the machines, and no guest images beside them.
clone=$tmp/clone
mkdir -p "$clone/machines"
cp "$top"/machines/*.ini "$clone/machines/"
rpi5=$clone/machines/rpi5.ini
x86=$clone/machines/x86_64.ini
kline() { grep -n "^$1 *=" "$2" | cut -d: -f1; } # KEY FILE: the line that sets KEY

# The README's dumps work there: the ACPI directory is created, no kernel is needed.
(cd "$clone" && timeout "$limit" "$amv" --config machines/x86_64.ini --dump-acpi acpi/) \
	>"$tmp/out" 2>"$tmp/err"
st=$?
yes "--dump-acpi acpi/ on a fresh clone: exit $st" [ $st -eq 0 ]
yes "--dump-acpi acpi/ wrote the tables" test -s "$clone/acpi/DSDT.dat" -a -s "$clone/acpi/FACP.dat"
yes "--dump-acpi left no temporary file" [ -z "$(find "$clone/acpi" -name '*.tmp')" ]
expect 0 "" "--dump-acpi into the directory again" "$mv" --config "$x86" --dump-acpi "$clone/acpi"
(cd "$clone" && timeout "$limit" "$amv" --config machines/rpi5.ini --dump-dtb rpi5.dtb) \
	>"$tmp/out" 2>"$tmp/err"
st=$?
yes "--dump-dtb rpi5.dtb on a fresh clone: exit $st" test $st -eq 0 -a -s "$clone/rpi5.dtb"
# Its initrd is missing: said, at its line, with how to give one; the tree names none.
yes "--dump-dtb without the initrd says so at its line" grep -qF \
	"machines/rpi5.ini:$(kline initrd "$rpi5"): [boot] initrd: '" "$tmp/err"
yes "... and how to give one" grep -qF "does not exist: the device tree names no initrd (pass --initrd FILE" "$tmp/err"
expect 0 "" "--dump-dtb with --initrd=" "$mv" --config "$rpi5" --initrd= --dump-dtb "$tmp/none.dtb"
yes "a missing initrd is dumped as none" cmp -s "$clone/rpi5.dtb" "$tmp/none.dtb"
# The kernel changes nothing in the device tree: the recorded one, without a kernel.
expect 0 "" "--dump-dtb without a kernel" "$mv" --config "$rpi5" --initrd "$tmp/initrd" \
	--dump-dtb "$tmp/nokernel.dtb"
want=$(sed -n 's/^\([0-9a-f]*\) rpi5$/\1/p' "$here/dtb.sha256")
yes "the device tree without a kernel is the recorded one" \
	[ "$(sha256sum <"$tmp/nokernel.dtb" | cut -c1-64)" = "$want" ]

# Output paths that cannot be written: exit 2 before anything, nothing created.
expect 2 "--dump-acpi $tmp/no/such/acpi: there is no directory $tmp/no/such to create it in" \
	"--dump-acpi under a missing directory" "$mv" --config "$x86" --dump-acpi "$tmp/no/such/acpi"
yes "... created nothing" [ ! -e "$tmp/no" ]
expect 2 "--dump-acpi $tmp/initrd: not a directory" "--dump-acpi onto a file" \
	"$mv" --config "$x86" --dump-acpi "$tmp/initrd"
expect 2 "--dump-dtb $tmp: a directory" "--dump-dtb onto a directory" \
	"$mv" --config "$rpi5" --dump-dtb "$tmp"
expect 2 "--dump-dtb $tmp/initrd/x.dtb: Not a directory" "--dump-dtb under a file" \
	"$mv" --config "$rpi5" --dump-dtb "$tmp/initrd/x.dtb"
expect 2 "--boot-report: an empty path" "--boot-report=" \
	"$mv" --config "$rpi5" --check --boot-report=

# As a user who may not write there (root may write anything: as nobody), each output option
# is the same usage error; a boot file that user may not read is --check's error too.
ro=$(mktemp -d /tmp/mvcli-XXXXXX)
chmod 755 "$ro"
cp "$mv" "$rpi5" "$x86" "$tmp/Image" "$tmp/initrd" "$ro/"
chmod 644 "$ro/Image" "$ro/initrd"
mkdir "$ro/locked"
as=""
if [ "$(id -u)" = 0 ]; then
	as="setpriv --reuid=65534 --regid=65534 --clear-groups"
	chmod 600 "$ro/initrd"
else
	chmod 555 "$ro/locked"
	chmod 000 "$ro/initrd"
fi
rmv=$ro/$(basename "$mv")
# shellcheck disable=SC2086
expect 2 "--dump-dtb $ro/locked/x.dtb: cannot create it in $ro/locked: Permission denied" \
	"--dump-dtb into a directory this user may not write" \
	$as "$rmv" --config "$ro/rpi5.ini" --dump-dtb "$ro/locked/x.dtb"
# shellcheck disable=SC2086
expect 2 "--dump-acpi $ro/locked/acpi: cannot create it in $ro/locked: Permission denied" \
	"--dump-acpi into a directory this user may not write" \
	$as "$rmv" --config "$ro/x86_64.ini" --dump-acpi "$ro/locked/acpi"
# shellcheck disable=SC2086
expect 2 "--boot-report $ro/locked/r.json: cannot create it in $ro/locked: Permission denied" \
	"--boot-report into a directory this user may not write" \
	$as "$rmv" --config "$ro/rpi5.ini" --kernel "$ro/Image" --initrd= --boot-report \
	"$ro/locked/r.json"
# shellcheck disable=SC2086
expect 2 "--set boot.initrd: cannot read '$ro/initrd': Permission denied" \
	"--check of an initrd this user may not read" \
	$as "$rmv" --config "$ro/rpi5.ini" --kernel "$ro/Image" --initrd "$ro/initrd" --check
yes "... nothing was created" [ -z "$(ls -A "$ro/locked")" ]
rm -rf "$ro"

# --check checks every boot file a run needs, at the line or option that named it.
expect 2 "rpi5.ini:$(kline kernel "$rpi5"): [boot] kernel: '$clone/machines/../build/guest/Image' does not exist" \
	"--check of a missing kernel" "$mv" --config "$rpi5" --check
yes "--check of a missing initrd (in the same run as the kernel)" grep -qF \
	"rpi5.ini:$(kline initrd "$rpi5"): [boot] initrd: '$clone/machines/../build/guest/initramfs.cpio.gz' does not exist" \
	"$tmp/err"
expect 2 "--set boot.kernel: '$tmp' is a directory" "--check of a directory as kernel" \
	"$mv" --config "$rpi5" --kernel "$tmp" --initrd "$tmp/initrd" --check
expect 2 "--set boot.initrd: '$tmp/none' does not exist" "--check of a missing --initrd" \
	"$mv" --config "$rpi5" --kernel "$tmp/Image" --initrd "$tmp/none" --check
expect 2 "[boot]: no kernel: set [boot] kernel or pass --kernel" "--check without a kernel" \
	"$mv" --config "$rpi5" --kernel= --initrd= --check
expect 2 "--set boot.kernel: '$tmp/bzImage': not an arm64 Image" \
	"--check of an x86 kernel on an arm64 machine" \
	"$mv" --config "$rpi5" --kernel "$tmp/bzImage" --initrd= --check
expect 2 "--set boot.kernel: '$tmp/Image': not an x86 bzImage" \
	"--check of an arm64 kernel on an x86 machine" \
	"$mv" --config "$x86" --kernel "$tmp/Image" --initrd= --check
no "... naming the kernel, not the machine file" grep -q "x86_64.ini: not an x86" "$tmp/err"
# The same in the file, and in a run of this host's machine (the boot files are read before
# KVM is opened): FILE:LINE, the key, the kernel's path.
mkdir -p "$clone/build/guest" "$clone/build/guest-x86_64"
cp "$tmp/Image" "$clone/build/guest-x86_64/bzImage"
cp "$tmp/bzImage" "$clone/build/guest/Image"
cp "$tmp/initrd" "$clone/build/guest/initramfs.cpio.gz"
cp "$tmp/initrd" "$clone/build/guest-x86_64/initramfs.cpio.gz"
expect 2 "x86_64.ini:$(kline kernel "$x86"): [boot] kernel: '$clone/machines/../build/guest-x86_64/bzImage': not an x86 bzImage" \
	"--check of a kernel of the wrong format in the file" "$mv" --config "$x86" --check
case $(uname -m) in
x86_64) host=$x86 ;;
aarch64) host=$rpi5 ;;
*) host= ;;
esac
if [ -n "$host" ]; then
	expect 2 "$(basename "$host"):$(kline kernel "$host"): [boot] kernel: '" \
		"a run of a kernel of the wrong format" "$mv" --config "$host"
	yes "... names the kernel's format" grep -qF "': not an " "$tmp/err"
fi
rm -rf "$clone/build"

# Kernel command lines: indented lines continue [boot] cmdline in the file; one limit, 2047
# bytes (the kernel's 2048 with its NUL), in the file, --set, --append; on x86 the kernel's
# own cmdline_size, counting what microvm puts first.
w60=$(printf '%060d' 0)
sed "s/^cmdline = .*/cmdline = panic=-1 a=$w60\n\tb=$w60 ; note\n\n    c=$w60 d=1/" "$rpi5" \
	>"$tmp/long.ini"
expect 0 "" "--check of a command line on indented lines" "$mv" --config "$tmp/long.ini" \
	--kernel "$tmp/Image" --initrd= --check
yes "... joined with spaces ($(sed -n 's/^  cmdline //p' "$tmp/out" | cut -c1-40)...)" grep -qx \
	"  cmdline \"panic=-1 a=$w60 b=$w60 c=$w60 d=1\"" "$tmp/out"
# 2048 bytes: panic=-1, ten words of 190 bytes and one of 129, each after a space.
w190=$(printf '%0190d' 0)
sed "s/^cmdline = .*/cmdline = panic=-1$(printf '\\n\\t%s' "$w190" "$w190" "$w190" "$w190" "$w190" \
	"$w190" "$w190" "$w190" "$w190" "$w190" "$(printf '%0129d' 0)")/" "$rpi5" >"$tmp/long.ini"
expect 2 "long.ini:$(kline cmdline "$tmp/long.ini"): [boot] cmdline: 2048 bytes: a kernel keeps a command line of at most 2047" \
	"a command line of 2048 bytes in the file" "$mv" --config "$tmp/long.ini" \
	--kernel "$tmp/Image" --initrd= --check
expect 2 "long.ini:$(($(kline initrd "$rpi5") + 1)): indented line: only [boot] cmdline continues" \
	"an indented line after another key" \
	sh -c "sed 's/^initrd = .*/&\n  more/' '$rpi5' >'$tmp/long.ini' && '$mv' --config '$tmp/long.ini' --check"
max=$(printf "%0$((2047 - 9))d" 0)
expect 0 "" "--set boot.cmdline of 2047 bytes" "$mv" --config "$rpi5" --kernel "$tmp/Image" \
	--initrd= --set boot.cmdline="panic=-1 $max" --check
expect 2 "--set boot.cmdline: 2048 bytes: a kernel keeps a command line of at most 2047" \
	"--set boot.cmdline of 2048 bytes" "$mv" --config "$rpi5" --kernel "$tmp/Image" \
	--initrd= --set boot.cmdline="panic=-1 ${max}0" --check
expect 0 "" "--append up to 2047 bytes" "$mv" --config "$rpi5" --kernel "$tmp/Image" --initrd= \
	--append "$max" --check
expect 2 "--append: the kernel command line would be 2048 bytes ([boot] cmdline 8, --append 2039)" \
	"--append over 2047 bytes" "$mv" --config "$rpi5" --kernel "$tmp/Image" --initrd= \
	--append "$max" --append "" --check
bzimage "$tmp/bz100" 100
expect 2 "--set boot.cmdline: the kernel takes a command line of at most 100 bytes" \
	"an x86 command line over the kernel's cmdline_size" "$mv" --config "$x86" \
	--kernel "$tmp/bz100" --initrd= --set boot.cmdline="panic=-1 $(printf '%080d' 0)" --check
expect 0 "" "an x86 command line within it" "$mv" --config "$x86" --kernel "$tmp/bz100" \
	--initrd= --set boot.cmdline="panic=-1 $(printf '%040d' 0)" --check

# Options that conflict, or add up.
expect 0 "" "two --append" "$mv" --config "$rpi5" --kernel "$tmp/Image" --initrd= \
	--append "a=1 b" --append c --check
yes "... both, in order" grep -qx '  cmdline "panic=-1 a=1 b c"' "$tmp/out"
expect 2 "--config may be given once ($rpi5, then $x86)" "--config twice" \
	"$mv" --config "$rpi5" --config "$x86" --check
expect 2 "--dump-dtb may be given once" "--dump-dtb twice" \
	"$mv" --config "$rpi5" --dump-dtb "$tmp/a.dtb" --dump-dtb "$tmp/b.dtb"
expect 2 "--list-keys and --list-values print keys and words only" "--list-keys --check" \
	"$mv" --config "$rpi5" --list-keys --check
expect 2 "give one of --dump-dtb and --dump-acpi" "--dump-dtb --dump-acpi" \
	"$mv" --config "$rpi5" --dump-dtb "$tmp/a.dtb" --dump-acpi "$tmp/acpi2"
expect 2 "--boot-report describes a run" "--dump-dtb --boot-report" \
	"$mv" --config "$rpi5" --dump-dtb "$tmp/a.dtb" --boot-report "$tmp/r.json"
expect 2 "--append: a machine configured over the API takes its command line from PUT /boot-source" \
	"--append without a machine file (the API's)" \
	"$mv" --api-sock "$tmp/api.sock" --append quiet
yes "... the socket was not created" [ ! -e "$tmp/api.sock" ]
yes "nothing was written by the refused dumps" test ! -e "$tmp/a.dtb" -a ! -e "$tmp/b.dtb" \
	-a ! -e "$tmp/acpi2" -a ! -e "$tmp/r.json"
# --check with a dump does both; --check with --boot-report checks its path, writes nothing.
expect 0 "" "--check --dump-dtb" "$mv" --config "$rpi5" --kernel "$tmp/Image" \
	--initrd "$tmp/initrd" --check --dump-dtb "$tmp/both.dtb"
yes "... printed the machine" grep -q "^machine rpi5 " "$tmp/out"
yes "... and wrote the recorded device tree" \
	[ "$(sha256sum <"$tmp/both.dtb" | cut -c1-64)" = "$want" ]
expect 2 "[boot] kernel: '$clone/machines/../build/guest/Image' does not exist" \
	"--check --dump-dtb of a machine without its kernel" \
	"$mv" --config "$rpi5" --check --dump-dtb "$tmp/nothing.dtb"
yes "... wrote nothing" [ ! -e "$tmp/nothing.dtb" ]
expect 2 "--boot-report /nonexistent/x: there is no directory /nonexistent" \
	"--check --boot-report into a missing directory" "$mv" --config "$rpi5" \
	--kernel "$tmp/Image" --initrd= --check --boot-report /nonexistent/x
expect 0 "" "--check --boot-report" "$mv" --config "$rpi5" --kernel "$tmp/Image" --initrd= \
	--check --boot-report "$tmp/r.json"
yes "... wrote no report" [ ! -e "$tmp/r.json" ]
# A dump is written whole or not at all: a failing one leaves the file as it was.
echo old >"$tmp/keep.dtb"
expect 2 "" "--dump-dtb of a bad machine" "$mv" --config "$rpi5" --set machine.vcpus=99 \
	--dump-dtb "$tmp/keep.dtb"
yes "... left the old file" [ "$(cat "$tmp/keep.dtb")" = old ]
expect 0 "" "--dump-dtb over an old file" "$mv" --config "$rpi5" --dump-dtb "$tmp/keep.dtb" \
	--initrd=
yes "... replaced it, leaving no temporary file" test "$(cat "$tmp/keep.dtb")" != old \
	-a -z "$(find "$tmp" -maxdepth 1 -name 'keep.dtb.*')"

# A disk image that does not exist says so, for a run as for --check and a dump.
disk="--set blk0.type=virtio-blk --set blk0.path=$tmp/nope.img --kernel $tmp/Image --initrd="
for mode in --check "--dump-dtb $tmp/d.dtb" run; do
	[ "$mode" = run ] && mode=
	# shellcheck disable=SC2086
	expect 2 "--set blk0.path: '$tmp/nope.img' does not exist" \
		"a missing disk image (${mode:-a run})" "$mv" --config "$rpi5" $disk $mode
	no "... and nothing about writing it (${mode:-a run})" grep -q "writ" "$tmp/err"
done
