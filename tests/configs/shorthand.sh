# shellcheck shell=sh disable=SC2154,SC2086
# The command line's conveniences, sourced by run.sh (its $mv, $top, $here, $tmp, ok, bad,
# stand_in):
# --cpus, --memory, --disk and --net expand to the sections --set would write, with messages
# naming the option and its argument; machines found by name (--config rpi5, --list-machines);
# --kernel alone picks the default machine; --check --json; --list-keys on an incomplete
# machine and --list-values.

mvabs=$(cd "$(dirname "$mv")" && pwd)/$(basename "$mv")
rpi5=$top/machines/rpi5.ini
truncate -s 1M "$tmp/a.img"
# --check reads the boot files: run.sh's stand-ins (stand_in), and this host's for the
# default machine.
sa=$(stand_in "$rpi5")
sx=$(stand_in "$top/machines/x86_64.ini")
hk=$tmp/Image
[ "$(uname -m)" = x86_64 ] && hk=$tmp/bzImage
truncate -s 2M "$tmp/b.img"

# expect_out NAME STATUS TEXT COMMAND...: COMMAND exits with STATUS and prints TEXT (stdout or
# stderr; fixed string).
expect_out() {
	name=$1
	want=$2
	text=$3
	shift 3
	"$@" </dev/null >"$tmp/cli.out" 2>"$tmp/cli.err"
	st=$?
	if [ $st -eq "$want" ] && cat "$tmp/cli.out" "$tmp/cli.err" | grep -qF -- "$text"; then
		ok
	else
		bad "$name: exit $st (expected $want), wanted '$text' in:"
		cat "$tmp/cli.out" "$tmp/cli.err" | sed 's/^/    /' | head -n 20
	fi
}

# --disk: a read-only disk on each transport, after the disks the machine has.
expect_out "--disk PATH,ro on virtio-mmio" 0 \
	"blk0: virtio-blk $tmp/a.img (1 MiB, read-only), 1 queue of 256, io_uring (auto), writeback, virtio-mmio at 0xa000000, irq 16" \
	"$mv" --config "$rpi5" --disk "$tmp/a.img,ro" $sa --check
expect_out "--disk PATH,transport=pci,ro" 0 \
	"blk0: virtio-blk $tmp/a.img (1 MiB, read-only), 1 queue of 256, io_uring (auto), writeback, pci 0000:00:01.0, MSI-X" \
	"$mv" --config "$rpi5" --disk "$tmp/a.img,transport=pci,ro" $sa --check
expect_out "--disk after the machine's disks takes the next number" 0 \
	"blk3: virtio-blk $tmp/b.img (2 MiB)" \
	"$mv" --config "$rpi5" --set blk2.type=virtio-blk --set blk2.path="$tmp/a.img" \
	--disk "$tmp/b.img" $sa --check
expect_out "two --disk in order" 0 "blk1: virtio-blk $tmp/b.img (2 MiB)" \
	"$mv" --config "$rpi5" --disk "$tmp/a.img" --disk "$tmp/b.img" $sa --check
expect_out "--set after --disk changes that disk" 0 "blk0: virtio-blk $tmp/a.img (1 MiB, read-only)" \
	"$mv" --config "$rpi5" --disk "$tmp/a.img" --set blk0.readonly=on $sa --check
"$mv" --config "$rpi5" --disk "$tmp/a.img" --check >"$tmp/cli.out" 2>&1
if grep -q "read-only" "$tmp/cli.out"; then bad "--disk without ro is read-only"; else ok; fi

# --net, --cpus, --memory.
expect_out "--net TAP,mac=..,transport=pci,vhost=on" 0 \
	"net0: virtio-net TAP mvt0, MAC 02:00:00:00:00:07, MTU 1500, 1 queue pair of 256, offloads on, data path vhost, pci 0000:00:01.0, MSI-X" \
	"$mv" --config "$rpi5" --net mvt0,mac=02:00:00:00:00:07,transport=pci,vhost=on $sa --check
expect_out "--net with no TAP name" 0 "net1: virtio-net TAP tap%d" \
	"$mv" --config "$rpi5" --net mvt0 --net ,transport=mmio $sa --check
expect_out "--cpus and --memory" 0 "vcpus 2, memory 2048 MiB at 0x40000000" \
	"$mv" --config "$rpi5" --cpus 2 --memory 2G $sa --check

# Bad arguments: exit 2, the option and its argument named.
expect_out "--disk PATH,rw" 2 "microvm: --disk /x,rw: unknown option 'rw' (ro, transport=)" \
	"$mv" --config "$rpi5" --disk /x,rw $sa --check
expect_out "--disk ,ro" 2 "microvm: --disk ,ro: an image's path is needed before any ','" \
	"$mv" --config "$rpi5" --disk ,ro $sa --check
expect_out "--disk PATH,ro=yes" 2 "--disk a,ro=yes: 'ro' takes no value" \
	"$mv" --config "$rpi5" --disk a,ro=yes $sa --check
expect_out "--disk PATH,transport" 2 "--disk a,transport: 'transport' needs a value" \
	"$mv" --config "$rpi5" --disk a,transport $sa --check
expect_out "--disk PATH,ro,ro" 2 "--disk a,ro,ro: 'ro' is given twice" \
	"$mv" --config "$rpi5" --disk a,ro,ro $sa --check
expect_out "--disk PATH,transport=pcx" 2 \
	"--disk $tmp/a.img,transport=pcx: blk0.transport: 'pcx' is not one of: mmio, pci (did you mean 'pci'?)" \
	"$mv" --config "$rpi5" --disk "$tmp/a.img,transport=pcx" $sa --check
expect_out "--disk of an odd size" 2 "--disk $top/VERSION: blk0.path: " \
	"$mv" --config "$rpi5" --disk "$top/VERSION" $sa --check
expect_out "--net TAP,speed=1" 2 "--net t,speed=1: unknown option 'speed' (mac=, transport=, vhost=)" \
	"$mv" --config "$rpi5" --net t,speed=1 $sa --check
expect_out "--net TAP,vhost=maybe" 2 "--net t,vhost=maybe: net0.vhost: 'maybe' is not a boolean" \
	"$mv" --config "$rpi5" --net t,vhost=maybe $sa --check
expect_out "--net TAP,mac=bad" 2 "--net t,mac=zz: net0.mac:" \
	"$mv" --config "$rpi5" --net t,mac=zz $sa --check
expect_out "--cpus 9 on GICv2" 2 "--cpus 9: machine.vcpus: 9 vCPUs, but GICv2 supports at most 8" \
	"$mv" --config "$rpi5" --cpus 9 $sa --check
expect_out "--cpus twice" 2 "microvm: --cpus 2, then --cpus 3: --cpus is given twice" \
	"$mv" --config "$rpi5" --cpus 2 --cpus 3 $sa --check
expect_out "--memory ''" 2 "--memory : a size (512M, 2G) is needed" \
	"$mv" --config "$rpi5" --memory "" $sa --check
expect_out "--memory 3X" 2 "--memory 3X: memory.size: '3X' is not a number or size" \
	"$mv" --config "$rpi5" --memory 3X $sa --check
expect_out "--disk with --restore" 2 "--disk $tmp/a.img: --restore runs the machine the snapshot holds" \
	"$mv" --restore "$tmp/none.state" --disk "$tmp/a.img"
expect_out "--cpus over the API" 2 "--cpus 2: over the API, PUT /machine-config" \
	"$mv" --api-sock "$tmp/api.sock" --cpus 2
expect_out "--json without --check" 2 "microvm: --json goes with --check" "$mv" --config "$rpi5" --json

# Machines found by name, from another directory (a binary in the checkout's build/).
case $mvabs in
"$top"/build/microvm | "$top"/build/*/microvm)
	expect_out "--config rpi5 from /" 0 "machine rpi5 ($top/machines/rpi5.ini), arm64" \
		sh -c "cd / && '$mvabs' --config rpi5 $sa --check"
	expect_out "-c x86_64 from /" 0 "machine x86_64 ($top/machines/x86_64.ini), x86_64" \
		sh -c "cd / && '$mvabs' -c x86_64 $sx --check"
	expect_out "--config rpi5x" 2 \
		"microvm: --config rpi5x: no such file, and no rpi5x.ini in $top/machines (did you mean 'rpi5'?)" \
		sh -c "cd / && '$mvabs' --config rpi5x --check"
	expect_out "--config rpi5.ini is a path" 2 "rpi5.ini: No such file" \
		sh -c "cd / && '$mvabs' --config rpi5.ini --check"
	mkdir "$tmp/here" && cp "$top/machines/virt-gicv3.ini" "$tmp/here/rpi5"
	expect_out "a file called rpi5 here wins" 0 "machine virt-gicv3 (rpi5)" \
		sh -c "cd '$tmp/here' && '$mvabs' --config rpi5 $sa --check"
	"$mv" --list-machines >"$tmp/cli.out" 2>"$tmp/cli.err"
	st=$?
	want=$(cd "$top/machines" && ls ./*.ini | sed 's|^\./||; s/\.ini$//' | tr '\n' ' ')
	have=$(cut -d' ' -f1 "$tmp/cli.out" | tr '\n' ' ')
	if [ $st -eq 0 ] && [ "$have" = "$want" ] && [ ! -s "$tmp/cli.err" ] &&
		grep -qE "^rpi5 +$top/machines/rpi5.ini +Raspberry Pi 5 host" "$tmp/cli.out" &&
		grep -qE "^x86_64 +$top/machines/x86_64.ini +An x86-64 machine" "$tmp/cli.out"; then
		ok
	else
		bad "--list-machines: exit $st, names '$have' (expected '$want'):"
		sed 's/^/    /' "$tmp/cli.out" "$tmp/cli.err"
	fi
	;;
*) echo "note: $mv is not in $top/build/: machines by name not tested" ;;
esac
expect_out "--list-machines alone" 2 "--list-machines takes no other option" \
	"$mv" --list-machines --config "$rpi5"

# --kernel alone: the default machine of this host's architecture.
arch=arm64
[ "$(uname -m)" = x86_64 ] && arch=x86_64
expect_out "--kernel alone --check" 0 "machine default (default machine), $arch" \
	"$mv" --kernel "$hk" --initrd "$tmp/initrd" --check
expect_out "--kernel with --cpus and --memory" 0 "vcpus 2, memory 1024 MiB" \
	"$mv" --kernel "$hk" --initrd "$tmp/initrd" --cpus 2 --memory 1G --check
expect_out "--kernel on the default machine is the one given" 0 "kernel $hk" \
	"$mv" --kernel "$hk" --initrd "$tmp/initrd" --check
expect_out "no machine at all" 2 "--config FILE|NAME, --kernel IMAGE, --restore STATE or --api-sock" \
	"$mv" --cpus 2

# --check --json: it parses and holds the devices, transports and settings.
if command -v python3 >/dev/null 2>&1; then
	"$mv" --config "$rpi5" --disk "$tmp/a.img,ro,transport=pci" --disk "$tmp/b.img" \
		--net mvt0,mac=02:00:00:00:00:07 --cpus 2 $sa --check --json >"$tmp/cli.json" 2>"$tmp/cli.err"
	st=$?
	if [ $st -eq 0 ] && python3 - "$tmp/cli.json" "$tmp" <<'EOF'; then ok; else
import json, sys
d = json.load(open(sys.argv[1]))
t = sys.argv[2]
devs = {x["name"]: x for x in d["devices"]}
assert d["name"] == "rpi5" and d["arch"] == "arm64" and d["vcpus"] == 2, d["name"]
assert d["memory"] == {"base": 0x40000000, "size": 1 << 30, "hugepages": False}, d["memory"]
b0, b1, n0, u0 = devs["blk0"], devs["blk1"], devs["net0"], devs["uart0"]
assert b0["type"] == "virtio-blk" and b0["transport"] == "pci", b0
assert b0["pci"]["address"] == "0000:00:01.0" and b0["pci"]["interrupts"] == "msi-x", b0
assert b0["settings"] == {"type": "virtio-blk", "path": t + "/a.img", "readonly": "on",
                          "transport": "pci"}, b0["settings"]
assert b1["transport"] == "mmio" and b1["base"] == 0xa000000 and b1["size"] == 0x200, b1
assert b1["irq"] == {"line": 16, "trigger": "edge"}, b1
assert n0["type"] == "virtio-net" and n0["settings"]["tap"] == "mvt0", n0
assert n0["settings"]["mac"] == "02:00:00:00:00:07" and n0["irq"]["line"] == 17, n0
assert u0["console"] is True and u0["irq"] == {"line": 1, "trigger": "level"}, u0
assert d["sections"]["gic"]["version"] == "2" and "blk0" not in d["sections"], d["sections"]
assert d["pci"]["msi"] is True and d["virtio_mmio"]["irq_base"] == 16, d["pci"]
regions = {(r["owner"], r["what"]) for r in d["regions"]}
assert ("memory", "ram") in regions and ("gic", "distributor") in regions, regions
EOF
		bad "--check --json (exit $st):"
		sed 's/^/    /' "$tmp/cli.err"
	fi
	if "$mv" --config "$top/machines/x86_64.ini" $sx --check --json 2>"$tmp/cli.err" |
		python3 -m json.tool >/dev/null; then ok; else bad "--check --json of x86_64.ini"; fi
else
	echo "note: no python3: --check --json not parsed"
fi

# --list-keys on an incomplete machine: the keys of what could be read, a new device's too.
"$mv" --config "$rpi5" --set blk9.type=virtio-blk --list-keys >"$tmp/cli.out" 2>"$tmp/cli.err"
st=$?
if [ $st -eq 2 ] && grep -qx blk9.path "$tmp/cli.out" && grep -qx blk9.transport "$tmp/cli.out" &&
	grep -qx gic.version "$tmp/cli.out" &&
	grep -qF "[blk9]: missing required key 'path'" "$tmp/cli.err"; then ok; else
	bad "--list-keys with an incomplete blk9: exit $st"; sed 's/^/    /' "$tmp/cli.err"; fi
"$mv" --set uart0.console=on --list-keys >"$tmp/cli.out" 2>"$tmp/cli.err"
if [ $? -eq 0 ] && grep -qx uart0.console "$tmp/cli.out" && grep -qx memory.size "$tmp/cli.out"; then
	ok; else bad "--list-keys without --config (the default machine)"; fi
# --list-values: an enum's words, a boolean's, the device types.
values() { "$mv" "$@" 2>/dev/null | tr '\n' ' '; }
v=$(values --config "$rpi5" --disk "$tmp/a.img" --list-values blk0.transport)
if [ "$v" = "mmio pci " ]; then ok; else bad "--list-values blk0.transport: '$v'"; fi
v=$(values --config "$rpi5" --list-values uart0.console)
if [ "$v" = "on off " ]; then ok; else bad "--list-values uart0.console: '$v'"; fi
v=$(values --config "$rpi5" --list-values gic.version)
if [ "$v" = "auto 2 3 " ]; then ok; else bad "--list-values gic.version: '$v'"; fi
v=$(values --config "$rpi5" --disk "$tmp/a.img" --list-values blk0.ioeventfd)
if [ "$v" = "auto on off " ]; then ok; else bad "--list-values blk0.ioeventfd: '$v'"; fi
v=$(values --config "$rpi5" --list-values blk7.type)
case $v in *" virtio-blk virtio-net "*) ok ;; *) bad "--list-values blk7.type: '$v'" ;; esac
expect_out "--list-values without a dot" 2 "--list-values foo: expected SECTION.KEY" \
	"$mv" --config "$rpi5" --list-values foo
