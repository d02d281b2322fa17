#!/bin/sh
# Builds the benchmark tools disk: Debian's fio, iperf3 and strace for arm64 with exactly the shared
# libraries they load (the ELF NEEDED closure, found with readelf), the dynamic loader, and a
# wrapper per tool, in an ext4 image. The guest mounts it (read-only) and runs
# /mnt/bin/fio or /mnt/bin/iperf3; OUT.tar.gz holds the same tree for an emulated host.
# Cached under $MICROVM_CACHE, keyed on the package versions. Asking apt for those takes
# seconds per call on a busy machine, so they are asked only when the package indexes
# changed: the InRelease files apt last fetched (they carry every index's checksum) and this
# script make a cheap key that names the versions' key once it is known.
# Usage: build-tools.sh OUT.ext4
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${MICROVM_CACHE:-$HOME/.cache/microvm}
out=$1
tools="fio iperf3 strace"
mkdir -p "$cache"
quick=$(cat "$0" /var/lib/apt/lists/*InRelease 2>/dev/null | sha256sum | cut -c1-16)
index=$cache/tools-index-$quick
key=$(cat "$index" 2>/dev/null || true)
cached=$cache/tools-$key.ext4
if [ -z "$key" ] || [ ! -f "$cached" ]; then
	# The tools and every library package of their dependency closure, in one query;
	# their candidate versions in another.
	# shellcheck disable=SC2046
	pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances $(for t in $tools; do echo "$t:arm64"; done) \
		2>/dev/null | grep -v '^ ' | sed -n 's/:arm64$//p' |
		grep -E "^($(echo $tools | tr ' ' '|')|lib.*|zlib1g)$" | sort -u)
	[ -n "$pkgs" ] || { echo "build-tools: apt knows no $tools for arm64" >&2; exit 1; }
	# shellcheck disable=SC2046
	key=$(apt-cache policy $(for p in $pkgs; do echo "$p:arm64"; done) |
		awk '/^[^ ].*:$/ { p = $0; sub(/:arm64:$/, "", p) } /^  Candidate:/ { print p, $2 }' |
		cat - "$0" | sha256sum | cut -c1-16)
	cached=$cache/tools-$key.ext4
fi
if [ ! -f "$cached" ]; then
	stage=$(mktemp -d)
	trap 'rm -rf "$stage"' EXIT
	mkdir -p "$stage/all" "$stage/img/bin" "$stage/img/lib"
	# shellcheck disable=SC2046
	for d in $("$here/fetch-deb.sh" $(for p in $pkgs; do echo "$p:arm64"; done)); do
		cp -a "$d"/. "$stage/all/" 2>/dev/null || true
	done
	# Resolve NEEDED from the tools outwards; copy each library once.
	todo=""
	for t in $tools; do
		cp -L "$stage/all/usr/bin/$t" "$stage/img/bin/$t.bin"
		todo="$todo $stage/img/bin/$t.bin"
	done
	while [ -n "$todo" ]; do
		next=""
		for f in $todo; do
			for lib in $(aarch64-linux-gnu-readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
				[ -e "$stage/img/lib/$lib" ] && continue
				src=$(find "$stage/all/lib" "$stage/all/usr/lib" -name "$lib" 2>/dev/null | head -n 1)
				if [ -z "$src" ]; then
					echo "build-tools: $lib (needed by $(basename "$f")) not found" >&2
					exit 1
				fi
				cp -L "$src" "$stage/img/lib/$lib"
				next="$next $stage/img/lib/$lib"
			done
		done
		todo=$next
	done
	cp -L "$stage/all/lib/ld-linux-aarch64.so.1" "$stage/img/lib/"
	for t in $tools; do
		# The wrapper runs the tool through the disk's own loader and libraries.
		printf '#!/bin/sh\nd=$(dirname "$(dirname "$0")")\nexec "$d/lib/ld-linux-aarch64.so.1" --library-path "$d/lib" "$d/bin/%s.bin" "$@"\n' \
			"$t" >"$stage/img/bin/$t"
		chmod 755 "$stage/img/bin/$t"
	done
	size=$(du -sm "$stage/img" | cut -f1)
	mke2fs -q -t ext4 -L microvm-tools -d "$stage/img" -F "$cached.tmp" "$((size + 16))M" \
		>/dev/null
	(cd "$stage/img" && tar -czf "${cached%.ext4}.tar.gz.tmp" .)
	mv "${cached%.ext4}.tar.gz.tmp" "${cached%.ext4}.tar.gz"
	mv "$cached.tmp" "$cached"
fi
echo "$key" >"$index"
mkdir -p "$(dirname "$out")"
cp "$cached" "$out"
cp "${cached%.ext4}.tar.gz" "${out%.ext4}.tar.gz"
echo "build-tools: $out ($(du -h "$out" | cut -f1), $(echo $tools))"
