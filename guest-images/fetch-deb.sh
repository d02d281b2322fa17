#!/bin/sh
# Fetches a Debian package (any architecture) into the cache and unpacks it there.
# Usage: fetch-deb.sh PACKAGE[:ARCH]   prints the directory it was unpacked into.
set -eu
cache=${MICROVM_CACHE:-$HOME/.cache/microvm}
pkg=$1
ver=$(apt-cache policy "$pkg" | sed -n 's/ *Candidate: //p')
if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
	echo "fetch-deb: no candidate for $pkg (run apt-get update; dpkg --add-architecture arm64)" >&2
	exit 1
fi
dir="$cache/deb/$(echo "$pkg" | tr ':' '_')-$ver"
if [ ! -f "$dir/.done" ]; then
	tmp=$(mktemp -d)
	chown _apt "$tmp" 2>/dev/null || true
	(cd "$tmp" && apt-get download -q "$pkg=$ver" >/dev/null)
	rm -rf "$dir"
	mkdir -p "$dir"
	dpkg -x "$tmp"/*.deb "$dir"
	rm -rf "$tmp"
	touch "$dir/.done"
fi
echo "$dir"
