#!/bin/sh
# Fetches Debian packages (any architecture) into the cache and unpacks each there.
# Usage: fetch-deb.sh PACKAGE[:ARCH]...   prints the directory each was unpacked into, one a
# line in the order given. apt is asked once for all the versions and once for all the
# packages not yet in the cache (each call takes seconds on a busy machine).
set -eu
cache=${MICROVM_CACHE:-$HOME/.cache/microvm}
native=$(dpkg --print-architecture)
vers=$(apt-cache policy "$@" | awk '/^[^ ].*:$/ { p = $0; sub(/:$/, "", p) }
	/^  Candidate:/ { print p, $2 }')
dirs=""
want=""
for pkg in "$@"; do
	# apt-cache names a package of the native architecture without its suffix.
	ver=$(echo "$vers" | awk -v p="$pkg" -v n="${pkg%:"$native"}" \
		'$1 == p || $1 == n { print $2; exit }')
	if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
		echo "fetch-deb: no candidate for $pkg (run apt-get update; dpkg --add-architecture arm64)" >&2
		exit 1
	fi
	dir="$cache/deb/$(echo "$pkg" | tr ':' '_')-$ver"
	dirs="$dirs $dir"
	[ -f "$dir/.done" ] || want="$want $pkg=$ver"
done
if [ -n "$want" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	chown _apt "$tmp" 2>/dev/null || true
	# shellcheck disable=SC2086
	(cd "$tmp" && apt-get download -q $want >/dev/null)
	for pv in $want; do
		pkg=${pv%%=*}
		ver=${pv#*=}
		dir="$cache/deb/$(echo "$pkg" | tr ':' '_')-$ver"
		arch=$native
		case "$pkg" in *:*) arch=${pkg#*:} ;; esac
		# apt-get download names a file NAME_VERSION_ARCH.deb (an epoch's colon as %3a);
		# an architecture-independent package's ARCH is all.
		base=$tmp/${pkg%%:*}_$(echo "$ver" | sed 's/:/%3a/')
		deb=$(ls "${base}_$arch.deb" "${base}_all.deb" 2>/dev/null | head -n 1)
		rm -rf "$dir"
		mkdir -p "$dir"
		dpkg -x "$deb" "$dir"
		touch "$dir/.done"
	done
fi
for dir in $dirs; do echo "$dir"; done
