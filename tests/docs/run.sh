#!/bin/sh
# Documentation checks: what README.md and docs/*.md state about the project is true.
#   - every long option of `microvm --help` is in the README's synopsis and option table;
#   - every module (src/**/*.c) is in docs/architecture.md's module map;
#   - every relative link in the README and docs/ names a file that exists;
#   - every `make TARGET` the README names is a target of the Makefile;
#   - the counts the documents state: bad machine descriptions, benchmarks, machines that have
#     a boot timer;
#   - with --examples: every `microvm --config machines/...` example in a code block of the
#     README and docs/ is run as written when it only validates or dumps (--check, --dump-dtb,
#     --dump-acpi: the output checked with dtc or iasl), and with --check added otherwise; and
#     every complete device added with `--set` in a document passes --check on each machine
#     of its architecture. The examples name the guest images: run after `make guest`.
# Usage: run.sh MICROVM [--examples]
mv=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
examples=${2:-}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

# The README's Usage synopsis: the first code block after "## Usage".
sed -n '/^## Usage/,/^| option/p' README.md >"$tmp/synopsis"
for opt in $("$mv" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
	if grep -qF -- "$opt" "$tmp/synopsis" && grep -q -- "^| \`$opt\|^| .*\`${opt}[ \`]" README.md; then
		ok
	else
		bad "README: $opt (microvm --help) is missing from the synopsis or the option table"
	fi
done

for f in $(find src -name '*.c' | sort); do
	if grep -qF "\`$f\`" docs/architecture.md; then ok; else
		bad "docs/architecture.md: $f is not in the module map"; fi
done

# Relative links: [text](path) and [text](path#anchor), from the document's own directory.
for doc in README.md docs/*.md; do
	dir=$(dirname "$doc")
	grep -o '](\([^)#:]*\)[)#]' "$doc" | sed 's/^](//; s/[)#]$//' | sort -u >"$tmp/links"
	while read -r link; do
		[ -n "$link" ] || continue
		if [ -e "$dir/$link" ]; then ok; else bad "$doc: link to $link: no such file"; fi
	done <"$tmp/links"
done

for t in $(grep -o '`make [a-z][a-z0-9_-]*' README.md | sed 's/`make //' | sort -u); do
	if grep -q "^$t:" Makefile; then ok; else bad "README: make $t is not a Makefile target"; fi
done

# number WORD-OR-DIGITS: the value of "seven" or "7".
number() {
	case $(echo "$1" | tr 'A-Z' 'a-z') in
	one) echo 1 ;; two) echo 2 ;; three) echo 3 ;; four) echo 4 ;; five) echo 5 ;;
	six) echo 6 ;; seven) echo 7 ;; eight) echo 8 ;; nine) echo 9 ;; ten) echo 10 ;;
	*[!0-9]*) echo "?" ;; *) echo "$1" ;;
	esac
}
# stated DOC WHAT STATED ACTUAL: a count a document states is the real one.
stated() {
	if [ -z "$3" ]; then
		bad "$1: no statement of $2 found"
	elif [ "$(number "$3")" = "$4" ]; then
		ok
	else
		bad "$1: states $3 $2, there are $4"
	fi
}
n=$(sed -n 's/.* \([0-9][0-9]*\) bad machine descriptions.*/\1/p' README.md | head -n 1)
stated README.md "bad machine descriptions" "$n" "$(ls tests/configs/bad/*.ini | wc -l)"
n=$(sed -n 's/^\([A-Za-z]*\) benchmarks, each a make target.*/\1/p' docs/benchmarks.md)
stated docs/benchmarks.md "benchmarks" "$n" "$(grep -c '^bench-[a-z0-9-]*:' Makefile)"
for t in $(sed -n 's/^\(bench-[a-z0-9-]*\):.*/\1/p' Makefile); do
	for doc in README.md docs/benchmarks.md; do
		if grep -qF "make $t" "$doc"; then ok; else bad "$doc: make $t is not described"; fi
	done
done
# docs/config.md says every machine has a boot timer.
if grep -q "Every machine in \`machines/\` has one" docs/config.md; then
	for m in machines/*.ini; do
		if grep -q '^type = boot-timer' "$m"; then ok; else bad "$m: no boot-timer"; fi
	done
else
	bad "docs/config.md: no statement of which machines have a boot timer"
fi

if [ "$examples" != --examples ]; then
	echo "docs: $pass passed, $fail failed"
	[ $fail -eq 0 ]
	exit
fi

# kernel_arch FILE: aarch64 for an arm64 Image ("ARMd" at 56), x86_64 for a bzImage ("HdrS" at
# 0x202), else unknown.
kernel_arch() {
	if [ "$(dd if="$1" bs=1 skip=56 count=4 2>/dev/null)" = ARMd ]; then
		echo aarch64
	elif [ "$(dd if="$1" bs=1 skip=514 count=4 2>/dev/null)" = HdrS ]; then
		echo x86_64
	else
		echo unknown
	fi
}

# The examples, one per line: a code block's lines starting with "microvm --config" or
# "microvm --kernel" (the default machine),
# continuation lines joined, comments removed. Placeholders ([...], SECTION) are skipped.
for doc in README.md docs/*.md; do
	awk '/^```/ { block = !block; next }
	     block && cont { line = line " " $0 }
	     block && !cont && /^microvm (--config|--kernel) / { line = $0 }
	     block && line != "" {
	        cont = sub(/\\$/, "", line)
	        if (!cont) { sub(/ +#.*/, "", line); print line; line = "" }
	     }' "$doc" | grep -v '\[\|\.\.\.\|SECTION' >"$tmp/examples"
	while read -r ex; do
		run=$(echo "$ex" | sed 's/^microvm //; s/ *&$//')
		case " $run " in
		*" --check "* | *" --dump-dtb "* | *" --dump-acpi "*) add= ;;
		*) # a run: validated instead, without its outputs and API socket
			run=$(echo "$run" | sed 's/--boot-report [^ ]*//; s/--api-sock [^ ]*//')
			add=--check ;;
		esac
		# The machine's kernel must exist (--check opens it): make guest, guest-x86_64.
		case $run in
		--kernel*) # the default machine is this host's architecture's
			kernel=$(echo "$run" | sed 's/^--kernel \([^ ]*\).*/\1/')
			if [ -f "$kernel" ] && [ "$(kernel_arch "$kernel")" != "$(uname -m)" ]; then
				echo "docs: skipped '$ex': an $(kernel_arch "$kernel") kernel; the default machine here is $(uname -m)"
				continue
			fi ;;
		*)	machine=$(echo "$run" | sed 's/^--config \([^ ]*\).*/\1/')
			[ -f "$machine" ] || machine=machines/$machine.ini
			kernel=machines/$(sed -n 's/^kernel *= *//p' "$machine") ;;
		esac
		if [ ! -f "$kernel" ]; then
			echo "docs: skipped '$ex': no $kernel (make guest or guest-x86_64)"
			continue
		fi
		rm -rf "$tmp/cwd" && mkdir "$tmp/cwd" && ln -s "$top/machines" "$top/build" "$tmp/cwd/"
		# shellcheck disable=SC2086
		if ! (cd "$tmp/cwd" && eval "\"$mv\" $run $add" </dev/null >"$tmp/out" 2>"$tmp/err"); then
			bad "$doc: '$ex' fails:"
			sed 's/^/    /' "$tmp/err"
			continue
		fi
		out=$(echo "$run" | sed -n 's/.*--dump-\(dtb\|acpi\) \([^ ]*\).*/\1 \2/p')
		case $out in
		dtb*) if dtc -I dtb -O dts -o /dev/null "$tmp/cwd/${out#* }" 2>"$tmp/err"; then
			ok; else bad "$doc: '$ex': dtc cannot read its output"; fi ;;
		acpi*) if ! command -v iasl >/dev/null 2>&1; then ok
			elif (cd "$tmp/cwd/${out#* }" && iasl -d DSDT.dat >/dev/null 2>&1); then
			ok; else bad "$doc: '$ex': iasl cannot decompile its DSDT"; fi ;;
		*) ok ;;
		esac
	done <"$tmp/examples"
done

# Devices added whole with --set in a document's text: each passes --check on every machine
# of its architecture (a base beyond the I/O port space is an arm64 address).
for doc in README.md docs/*.md; do
	grep -o '`--set [^`]*\.type=[^`]*`' "$doc" | tr -d '`' | grep -v '\.\.\.' |
		grep -E '^(--set [^ ]+=[^ ]*)( --set [^ ]+=[^ ]*)*$' | sort -u
done >"$tmp/sets"
while read -r sets; do
	for m in machines/*.ini; do
		base=$(echo "$sets" | sed -n 's/.*\.base=\(0x[0-9a-fA-F]*\).*/\1/p')
		if [ -n "$base" ] && [ $((base)) -gt 65535 ] && grep -q '^arch *= *x86_64' "$m"; then
			continue
		fi
		# shellcheck disable=SC2086
		if "$mv" --config "$m" $sets --check >/dev/null 2>"$tmp/err"; then ok; else
			bad "'$sets' on $m:"; sed 's/^/    /' "$tmp/err"; fi
	done
done <"$tmp/sets"

echo "docs: $pass passed, $fail failed"
[ $fail -eq 0 ]
