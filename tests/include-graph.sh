#!/bin/sh
# The include graph of src/: every #include of a sibling module ("x.h", not <x.h>), as module
# -> module (a module is a .c and its .h: src/virtio/blk.{c,h} is virtio/blk). Reports the
# circles (modules that reach each other through includes) and the includes that run from a
# lower layer to a higher one (the table below), then one result line. Exits 1 on either,
# or when a module has no layer.
# Usage: include-graph.sh [--edges]    (--edges: print the graph's edges first)
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top/src" || exit 2

report=$(find . -name '*.[ch]' | sed 's|^\./||' | sort | while read -r f; do
	grep -o '^#include "[^"]*"' "$f" | sed 's/^#include "//; s/"$//' | while read -r inc; do
		printf '%s %s\n' "$f" "$inc"
	done
done | awk -v edges="${1:-}" '
# Lowest first. A module may include its own layer or a lower one. A layer is a list of
# module names or folder/ prefixes (a module matches the first entry that fits).
BEGIN {
	nl = split("base backends machine virtio devices arch top", lname, " ")
	layer["base"] = "log iov mem array range le loop blob sanitize timeline config alloc bus term kick sandbox console snapshot/snapfile snapshot/devstate"
	layer["backends"] = "backends/"
	layer["machine"] = "machine device arch boot vm irq kvm_arch kvm_none pci/"
	layer["virtio"] = "virtio/virtq virtio/virtio virtio/kickctl virtio/mmio virtio/pci virtio/transport virtio/adapter"
	layer["devices"] = "virtio/ devices/"
	layer["arch"] = "arch/"
	layer["top"] = "main catalog shorthand layout devices/registry api/ snapshot/snapshot"
	for (i = 1; i <= nl; i++) {
		n = split(layer[lname[i]], w, " ")
		for (j = 1; j <= n; j++) {
			entry[++nentry] = w[j]
			entry_layer[nentry] = i
		}
	}
}
function module(path) { sub(/\.[ch]$/, "", path); return path }
function dir(path) { return path ~ /\// ? substr(path, 1, match(path, /\/[^\/]*$/)) : "" }
function exists(p) { return (getline line < p) >= 0 ? (close(p) || 1) : 0 }
function level(m,    i, e) {
	for (i = 1; i <= nentry; i++) {
		e = entry[i]
		if (e ~ /\/$/ ? index(m, e) == 1 : m == e)
			return entry_layer[i]
	}
	return 0
}
{
	from = module($1)
	# As the compiler looks: beside the including file first, then the -I folders.
	inc = $2
	if (exists(dir($1) $2))
		inc = dir($1) $2
	else if (!exists($2) && exists("arch/arm64/" $2))
		inc = "arch/arm64/" $2
	else if (!exists($2) && exists("arch/x86/" $2))
		inc = "arch/x86/" $2
	to = module(inc)
	node[from] = 1; node[to] = 1
	if (from != to && !((from, to) in edge)) {
		edge[from, to] = 1
		out[from] = out[from] " " to
		if (edges)
			printf "edge %s -> %s\n", from, to
	}
}
END {
	# Reachability (a transitive closure over a few dozen modules).
	for (a in node) {
		n = split(out[a], w, " ")
		for (j = 1; j <= n; j++)
			reach[a, w[j]] = 1
	}
	for (k in node)
		for (a in node)
			if ((a, k) in reach)
				for (b in node)
					if ((k, b) in reach)
						reach[a, b] = 1
	bad = 0
	ncircles = 0
	for (a in node) {
		if (a in seen || !((a, a) in reach))
			continue
		nm = 0
		for (b in node)
			if ((a, b) in reach && (b, a) in reach) {
				seen[b] = 1
				m[++nm] = b
			}
		# Members sorted, so that the line reads the same on every awk.
		for (i = 2; i <= nm; i++)
			for (j = i; j > 1 && m[j - 1] > m[j]; j--) {
				t = m[j]; m[j] = m[j - 1]; m[j - 1] = t
			}
		members = ""
		for (i = 1; i <= nm; i++)
			members = members " " m[i]
		printf "circle:%s\n", members
		ncircles++
	}
	nup = 0
	for (a in node) {
		la = level(a)
		if (!la) {
			printf "no layer: %s (add it to the table in tests/include-graph.sh)\n", a
			bad++
			continue
		}
		n = split(out[a], w, " ")
		for (j = 1; j <= n; j++) {
			lb = level(w[j])
			if (lb > la) {
				printf "upward: %s (%s) -> %s (%s)\n", a, lname[la], w[j], lname[lb]
				nup++
			}
		}
	}
	nedges = 0
	for (e in edge)
		nedges++
	nnodes = 0
	for (a in node)
		nnodes++
	printf "include-graph: %d modules, %d includes, %d circles, %d upward\n", nnodes, nedges, ncircles, nup
	if (bad)
		printf "include-graph: %d modules without a layer\n", bad
}')
# The result line last: the end of the output is what gets read.
printf '%s\n' "$report" | grep -v '^include-graph:' | sort
printf '%s\n' "$report" | grep '^include-graph:'
printf '%s\n' "$report" | grep -q '^include-graph: [0-9]* modules, [0-9]* includes, 0 circles, 0 upward$' &&
	! printf '%s\n' "$report" | grep -q 'without a layer'
