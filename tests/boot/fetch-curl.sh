#!/bin/sh
# Puts Debian's curl for an emulated host into a tree: /usr/bin/curl, exactly the shared
# libraries it loads (the ELF NEEDED closure, found with readelf over the unpacked packages of
# curl's dependency closure) in /usr/lib/TRIPLET, which the dynamic loader searches by default
# (there is no ld.so.cache), and the loader itself at the path the binary's PT_INTERP names
# (/lib/ld-linux-aarch64.so.1 or /lib64/ld-linux-x86-64.so.2) as a real file: the tree has
# real directories only (no merged-/usr symlinks), so copying it over a root with a real /lib
# works. The boot tests drive microvm's HTTP API over its Unix socket with it.
# Cached under $MICROVM_CACHE as curl-ARCH-KEY, KEY a hash of the package versions (and this
# script); asking apt for those takes seconds, so as in guest-images/build-tools.sh they are
# asked only when the package indexes changed (curl-ARCH-index-QUICK names the KEY).
# Usage: fetch-curl.sh arm64|amd64 DEST
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${MICROVM_CACHE:-$HOME/.cache/microvm}
arch=$1
dest=$2
case "$arch" in
arm64) triplet=aarch64-linux-gnu ;;
amd64) triplet=x86_64-linux-gnu ;;
*) echo "fetch-curl: unknown architecture '$arch' (arm64 or amd64)" >&2; exit 2 ;;
esac
mkdir -p "$cache"
quick=$(cat "$0" /var/lib/apt/lists/*InRelease 2>/dev/null | sha256sum | cut -c1-16)
index=$cache/curl-$arch-index-$quick
key=$(cat "$index" 2>/dev/null || true)
tree=$cache/curl-$arch-$key
if [ -z "$key" ] || [ ! -d "$tree" ]; then
	# curl and every library package of its dependency closure, in one query (apt names
	# the packages of the build machine's own architecture without the suffix); their
	# candidate versions in another.
	pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances "curl:$arch" 2>/dev/null | grep -v '^ ' |
		sed -n -e "s/:$arch\$//p" -e '/:/!p' | grep -E '^(curl|lib.*|zlib1g)$' | sort -u)
	case " $(echo "$pkgs" | tr "\n" " ") " in *" curl "*" libcurl4 "*) ;; *)
		echo "fetch-curl: apt knows no curl and libcurl4 for $arch (apt-get update?)" >&2
		exit 1
		;;
	esac
	# shellcheck disable=SC2046
	key=$(apt-cache policy $(for p in $pkgs; do echo "$p:$arch"; done) |
		awk -v a=":$arch:" '/^[^ ].*:$/ { p = $0; sub(a "$", "", p); sub(/:$/, "", p) }
			/^  Candidate:/ { print p, $2 }' | cat - "$0" | sha256sum | cut -c1-16)
	tree=$cache/curl-$arch-$key
fi
if [ ! -d "$tree" ]; then
	# Two hosts of one architecture start together in make check: one builds, the other
	# waits for its tree (fetch-deb.sh unpacking the same packages twice at once would race).
	exec 9>"$cache/curl-$arch.lock"
	flock 9
fi
if [ ! -d "$tree" ]; then
	stage=$(mktemp -d)
	trap 'rm -rf "$stage"' EXIT
	all=$stage/all
	img=$stage/img
	libdir=$img/usr/lib/$triplet
	mkdir -p "$all" "$img/usr/bin" "$libdir"
	# shellcheck disable=SC2046
	for d in $("$top/guest-images/fetch-deb.sh" $(for p in $pkgs; do echo "$p:$arch"; done)); do
		cp -a "$d"/. "$all/"
	done
	# resolve PATH: PATH (inside the unpacked packages) with its symlinks followed inside
	# them too: an absolute link (libc6's /lib64/ld-linux-x86-64.so.2) must not reach the
	# build machine's own files.
	resolve() {
		p=$1
		n=0
		while [ -L "$all$p" ]; do
			t=$(readlink "$all$p")
			case "$t" in /*) p=$t ;; *) p=$(dirname "$p")/$t ;; esac
			n=$((n + 1))
			[ $n -lt 20 ] || { echo "fetch-curl: symlink loop at $1" >&2; exit 1; }
		done
		[ -f "$all$p" ] || { echo "fetch-curl: $1 not in the packages" >&2; exit 1; }
		echo "$all$p"
	}
	cp "$(resolve /usr/bin/curl)" "$img/usr/bin/curl"
	interp=$(readelf -l "$img/usr/bin/curl" |
		sed -n 's/.*\[Requesting program interpreter: \(.*\)\]/\1/p')
	[ -n "$interp" ] || { echo "fetch-curl: curl names no program interpreter" >&2; exit 1; }
	mkdir -p "$img$(dirname "$interp")"
	cp "$(resolve "$interp")" "$img$interp"
	# Resolve NEEDED from curl outwards; copy each library once.
	todo=$img/usr/bin/curl
	while [ -n "$todo" ]; do
		next=""
		for f in $todo; do
			for lib in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
				# libc.so.6 needs the loader by its name: that is the one at PT_INTERP.
				[ "$lib" != "${interp##*/}" ] || continue
				[ ! -e "$libdir/$lib" ] || continue
				src=""
				for dir in /lib/$triplet /usr/lib/$triplet /lib /usr/lib; do
					if [ -e "$all$dir/$lib" ] || [ -L "$all$dir/$lib" ]; then
						src=$(resolve "$dir/$lib")
						break
					fi
				done
				if [ -z "$src" ]; then
					echo "fetch-curl: $lib (needed by ${f##*/}) is in no package of curl's closure" >&2
					exit 1
				fi
				cp "$src" "$libdir/$lib"
				next="$next $libdir/$lib"
			done
		done
		todo=$next
	done
	# The tree appears whole (the directory is its own mark of being done).
	mv -T "$img" "$tree.tmp.$$"
	mv -T "$tree.tmp.$$" "$tree"
fi
echo "$key" >"$index"
mkdir -p "$dest"
cp -a "$tree"/. "$dest"/
