#!/bin/sh
# The installed microvm: make install into a staging directory, every installed machine
# checked from another directory, both manual pages rendered without warnings, the
# configuration keys the code asks for against the keys microvm.ini(5) and docs/config.md
# describe (both ways), the options of --help against microvm(1), one version everywhere,
# machines found by name, the bash completion (syntax, and what it offers for --config and
# --set), make uninstall, and make deb:
# the packages' file lists and lintian. Ends with "N passed, N failed".
# Usage: tests/install/run.sh [MAKE ARGS...] (e.g. CC=clang); DEB=0 skips make deb.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $1"; }
bad() { fail=$((fail + 1)); echo "FAIL: $1"; }
check() { # NAME COMMAND...: passes when COMMAND succeeds
	what=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then ok "$what"; else bad "$what"; sed 's/^/    /' "$tmp/out" | tail -n 20; fi
}
version=$(cat VERSION)
stage=$tmp/stage
prefix=/opt/mv
root=$stage$prefix

check "make install DESTDIR PREFIX" make -s install DESTDIR="$stage" PREFIX="$prefix" "$@"
for f in bin/microvm share/man/man1/microvm.1 share/man/man5/microvm.ini.5 \
	share/bash-completion/completions/microvm share/doc/microvm/README.md \
	share/doc/microvm/docs/config.md share/microvm/machines/rpi5.ini \
	share/microvm/machines/virt-gicv3.ini share/microvm/machines/x86_64.ini; do
	check "installed: $f" test -s "$root/$f"
done
check "installed binary is executable, others are not" sh -c \
	"[ -x '$root/bin/microvm' ] && [ -z \"\$(find '$root/share' -type f -perm /111)\" ]"
mv=$root/bin/microvm
check "microvm --version is VERSION ($version)" test "$("$mv" --version)" = "microvm $version"

# Every installed machine passes --check from another directory but for its kernel and
# initrd: the installed guest images' final paths (PREFIX/lib/microvm/guest*/), which a
# staged install does not have there; --check names them (as missing, or as it prints them).
for ini in "$root"/share/microvm/machines/*.ini; do
	base=${ini##*/}
	(cd / && "$mv" --config "$ini" --check) >"$tmp/check.txt" 2>&1
	st=$?
	other=$(grep -v -e "\[boot\] kernel: '.*' does not exist\$" \
		-e "\[boot\] initrd: '.*' does not exist\$" -e ' errors\?, nothing started$' "$tmp/check.txt")
	[ $st -eq 0 ] && other=
	check "--check of the installed $base from /: no error but missing boot files (exit $st)$other" \
		test $st -eq 0 -o $st -eq 2 -a -z "$other"
	kernel=$(sed -n -e 's/^  kernel //p' -e "s/.*\[boot\] kernel: '\(.*\)' does not exist\$/\1/p" \
		"$tmp/check.txt")
	initrd=$(sed -n -e 's/^  initrd //p' -e "s/.*\[boot\] initrd: '\(.*\)' does not exist\$/\1/p" \
		"$tmp/check.txt")
	check "$base: kernel and initrd are PREFIX/lib/microvm/guest*/ ($kernel, $initrd)" sh -c \
		"case '$kernel' in $prefix/lib/microvm/guest*/*Image) ;; *) exit 1 ;; esac &&
		 case '$initrd' in $prefix/lib/microvm/guest*/initramfs.cpio.gz) ;; *) exit 1 ;; esac"
	g=${kernel%/*}
	if [ -f "build/${g##*/}/initramfs.cpio.gz" ]; then
		check "$base: its kernel and initrd are installed" test -s "$stage$kernel" -a -s "$stage$initrd"
	fi
done
for g in guest guest-x86_64; do
	[ -f "build/$g/initramfs.cpio.gz" ] || continue
	check "the built $g images are installed" cmp "build/$g/initramfs.cpio.gz" \
		"$root/lib/microvm/$g/initramfs.cpio.gz"
done

# The manual pages render without a warning.
for page in man1/microvm.1 man5/microvm.ini.5; do
	check "groff -ww renders $page without warnings" sh -c \
		"groff -ww -z -man -k '$root/share/man/$page' 2>&1 | tee /dev/stderr | grep -q . && exit 1; exit 0"
	check "man -l $page" sh -c "MANWIDTH=80 man -l '$root/share/man/$page' >'$tmp/page.txt' &&
		test \$(wc -l <'$tmp/page.txt') -gt 40 && ! grep -q '@PREFIX@\|@VERSION@' '$tmp/page.txt'"
done
check "the pages carry version $version" sh -c \
	"grep -q '\"microvm $version\"' '$root/share/man/man1/microvm.1' &&
	 grep -q '\"microvm $version\"' '$root/share/man/man5/microvm.ini.5'"
check "microvm(1) names the installed machines' directory" \
	grep -q "$prefix/share/microvm/machines" "$root/share/man/man1/microvm.1"

# Keys: what the code asks for (--list-keys over machines with every section and device
# type) must be in microvm.ini(5); what docs/config.md's tables name must be asked for.
truncate -s 1M "$tmp/disk.img"
all="--set blk0.type=virtio-blk --set blk0.path=$tmp/disk.img --set net0.type=virtio-net
	--set uart1.type=ns16550a --set uart1.base=0x9030000 --set uart1.irq=5
	--set rng0.type=virtio-rng --set vsock0.type=virtio-vsock --set vsock0.cid=3
	--set vsock0.uds_path=$tmp/v.sock --set balloon.type=virtio-balloon"
{
	# shellcheck disable=SC2086
	"$mv" --config machines/rpi5.ini --list-keys $all
	"$mv" --config machines/virt-gicv3.ini --list-keys
	"$mv" --config machines/x86_64.ini --list-keys
} >"$tmp/keys" 2>"$tmp/keys.err"
check "--list-keys works on every machine" sh -c "test ! -s '$tmp/keys.err' && test \$(wc -l <'$tmp/keys') -gt 40"
cut -d. -f2 "$tmp/keys" | sort -u >"$tmp/code-keys"
missing=""
for k in $(cat "$tmp/code-keys"); do
	grep -q "fB$k\\\\fR" "$root/share/man/man5/microvm.ini.5" || missing="$missing $k"
done
check "every key the code knows is in microvm.ini(5)${missing:+ (missing:$missing)}" test -z "$missing"
sed -n 's/^| `\([a-z0-9_]*\)`\(, `\([a-z0-9_]*\)`\)\{0,1\} |.*/\1 \3/p' docs/config.md |
	tr ' ' '\n' | grep . | sort -u >"$tmp/doc-keys"
stale=$(comm -23 "$tmp/doc-keys" "$tmp/code-keys" | tr '\n' ' ')
check "every key docs/config.md describes is one the code knows${stale:+ (unknown: $stale)}" test -z "$stale"
check "docs/config.md describes some keys" test "$(wc -l <"$tmp/doc-keys")" -gt 40
undocumented=$(comm -13 "$tmp/doc-keys" "$tmp/code-keys" | tr '\n' ' ')
check "every key the code knows has a row in docs/config.md${undocumented:+ (no row: $undocumented)}" \
	test -z "$undocumented"

# Options: each long option of --help is in microvm(1).
missing=""
for o in $("$mv" --help | grep -o -- '--[a-z-]*' | sort -u); do
	grep -q -- "$(echo "$o" | sed 's/-/\\\\-/g')" "$root/share/man/man1/microvm.1" ||
		missing="$missing $o"
done
check "every option of --help is in microvm(1)${missing:+ (missing:$missing)}" test -z "$missing"

# The completion: valid bash, and it offers the machine's keys after --set.
comp=$root/share/bash-completion/completions/microvm
check "completion script parses (bash -n)" bash -n "$comp"
complete_line() { # LINE: what the completion offers at the end of LINE
	PATH=$root/bin:$PATH bash -c '. "$1"; COMP_LINE=$2; COMP_POINT=${#2}; _microvm
		printf "%s\n" "${COMPREPLY[@]}"' sh "$comp" "$1"
}
m=$root/share/microvm/machines
offers() { # WHAT LINE REPLY: the completion offers REPLY (space-separated) at the end of LINE
	got=$(complete_line "$2" | tr '\n' ' ')
	check "completion offers $1 (got '$got')" test "$got" = "$3"
}
offers "gic.v2m_irq_base= and gic.v2m_irq_count=" \
	"microvm --config $m/rpi5.ini --set gic.v2m_irq_" "gic.v2m_irq_base= gic.v2m_irq_count= "
offers "uart0.console= on x86_64.ini" "microvm --config $m/x86_64.ini -s uart0.con" \
	"uart0.console= "
offers "pty after uart0.host=p" "microvm --config $m/rpi5.ini --set uart0.host=p" "pty "
offers "the UART's host sides" "microvm --config $m/rpi5.ini --set uart0.host=" \
	"stdio file pty off "
offers "--dump-acpi --dump-dtb" "microvm --dump-" "--dump-acpi --dump-dtb "

# Machines by name: the installed ones, found from another directory; --list-machines. The
# guest images may not be built: --check reads stand-ins.
. "$top/tests/lib/stand-in.sh"
check "--config rpi5 is the installed rpi5.ini, from /" sh -c \
	"cd / && '$mv' --config rpi5 $(stand_in "$m/rpi5.ini") --check |
		grep -qxF 'machine rpi5 ($m/rpi5.ini), arm64'"
check "-c x86_64 is the installed x86_64.ini, from /" sh -c \
	"cd / && '$mv' -c x86_64 $(stand_in "$m/x86_64.ini") --check |
		grep -qxF 'machine x86_64 ($m/x86_64.ini), x86_64'"
(cd / && "$mv" --list-machines) >"$tmp/machines" 2>&1
out=$(cut -d' ' -f1 "$tmp/machines" | tr '\n' ' ')
check "--list-machines lists the three installed machines (got '$out')" sh -c \
	"test '$out' = 'rpi5 virt-gicv3 x86_64 ' &&
	 grep -qE '^rpi5 +$m/rpi5.ini +Raspberry Pi 5 host' '$tmp/machines'"
# The completion: machine names, the words a key takes, an incomplete device's keys.
offers "the machine rpi5 after --config" "microvm --config rpi" "rpi5 "
offers "mmio pci after blk0.transport=" "microvm -c rpi5 --disk $tmp/disk.img,ro --set blk0.transport=" \
	"mmio pci "
offers "on off after uart0.console=" "microvm -c x86_64 --set uart0.console=" "on off "
offers "blk9.transport= for a new disk" "microvm -c rpi5 --set blk9.type=virtio-blk --set blk9.tr" \
	"blk9.transport= "
offers "virtio-rng after a device's type=" "microvm --set net1.type=virtio-r" "virtio-rng "
offers "the default machine's keys without --config" "microvm --kernel Image --set machine.on_" \
	"machine.on_reboot= "
offers "pci after --disk PATH,transport=" "microvm --disk a.img,transport=p" "pci "

# uninstall removes what install put there, not a machine the user added beside them.
echo "; mine" >"$root/share/microvm/machines/mine.ini"
check "make uninstall" make -s uninstall DESTDIR="$stage" PREFIX="$prefix" "$@"
left=$(find "$stage" -type f | sed "s|^$stage||" | tr '\n' ' ')
check "only the user's own machine is left after make uninstall (left: $left)" \
	test "$left" = "$prefix/share/microvm/machines/mine.ini "

# The packages: built, named by VERSION, with the expected files; lintian (in dist/deb.sh)
# finds no error.
if [ "${DEB:-1}" != 0 ]; then
	check "make deb (lintian: no errors)" make -s deb
	cat "$tmp/out"
	arches=arm64
	[ "$(dpkg --print-architecture)" = amd64 ] && arches="arm64 amd64"
	for a in $arches; do
		deb=build/deb/microvm_${version}_$a.deb
		check "$deb exists" test -s "$deb"
		[ -s "$deb" ] || continue
		check "$a package: version $version, architecture $a" sh -c \
			"[ \"\$(dpkg-deb -f '$deb' Version Architecture | tr '\n' ' ')\" = \
				'Version: $version Architecture: $a ' ]"
		dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./||' >"$tmp/contents"
		kernel=Image
		[ "$a" = amd64 ] && kernel=bzImage
		g=guest
		[ "$a" = amd64 ] && g=guest-x86_64
		for f in usr/bin/microvm usr/share/man/man1/microvm.1.gz usr/share/man/man5/microvm.ini.5.gz \
			usr/share/bash-completion/completions/microvm usr/share/microvm/machines/rpi5.ini \
			usr/share/microvm/machines/x86_64.ini usr/share/microvm/machines/virt-gicv3.ini \
			usr/lib/microvm/$g/$kernel usr/lib/microvm/$g/initramfs.cpio.gz \
			usr/share/doc/microvm/copyright usr/share/doc/microvm/changelog.gz; do
			check "$a package holds $f" grep -qx "$f" "$tmp/contents"
		done
		other=guest-x86_64
		[ "$a" = amd64 ] && other=guest
		check "$a package holds no $other images" sh -c "! grep -q 'usr/lib/microvm/$other/' '$tmp/contents'"
		dpkg-deb -x "$deb" "$tmp/x-$a"
		check "$a package: the machines' kernel is the packaged one" sh -c \
			"grep -qx 'kernel = /usr/lib/microvm/$g/$kernel' '$tmp/x-$a/usr/share/microvm/machines/$([ $a = amd64 ] && echo x86_64 || echo rpi5).ini'"
		if [ "$a" = "$(dpkg --print-architecture)" ]; then
			check "$a package: its microvm runs and says $version" sh -c \
				"[ \"\$('$tmp/x-$a/usr/bin/microvm' --version)\" = 'microvm $version' ]"
		fi
	done
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
