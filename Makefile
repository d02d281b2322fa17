# microvm: a KVM microVM monitor for arm64 hosts.
#
#   make                                  build/microvm for this host
#   make CROSS_COMPILE=aarch64-linux-gnu- static build/aarch64/microvm
#   make check                            every test (unit, config, boot in emulated hosts)
#   make run                              boot machines/rpi5.ini to a shell
#   make SANITIZE=1                       ASan+UBSan build in build/asan/

# The one place the version is kept: microvm --version, the man pages and the .deb read it.
VERSION := $(shell cat VERSION)
CACHE ?= $(or $(MICROVM_CACHE),$(HOME)/.cache/microvm)
HOST_ARCH := $(shell uname -m)

ifneq ($(CROSS_COMPILE),)
  TARGET_ARCH := $(patsubst %-linux-gnu-,%,$(CROSS_COMPILE))
  SYSROOT ?= $(CACHE)/sysroot-arm64
  CC := $(CROSS_COMPILE)gcc
  OUT := build/$(TARGET_ARCH)
  PKG := PKG_CONFIG_SYSROOT_DIR=$(SYSROOT) \
	 PKG_CONFIG_LIBDIR=$(SYSROOT)/usr/lib/$(TARGET_ARCH)-linux-gnu/pkgconfig pkg-config --static
  DEP_CFLAGS := -isystem $(SYSROOT)/usr/include
  LDSTATIC := -static-pie -L$(SYSROOT)/usr/lib/$(TARGET_ARCH)-linux-gnu
else ifeq ($(STATIC),1)
  # make STATIC=1: a static build for this host (for the emulated x86-64 KVM host)
  TARGET_ARCH := $(HOST_ARCH)
  OUT := build/$(HOST_ARCH)
  PKG := pkg-config --static
  LDSTATIC := -static-pie
else ifeq ($(SANITIZE),1)
  TARGET_ARCH := $(HOST_ARCH)
  OUT := build/asan
  PKG := pkg-config
  SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
  TARGET_ARCH := $(HOST_ARCH)
  OUT ?= build
  PKG := pkg-config
endif

CC ?= cc
CFLAGS ?= -O2 -g
# Hardened: stack protector, fortified libc calls (not under the sanitizers, which replace
# those calls), position-independent executables, read-only relocations bound at start.
HARDEN := -fstack-protector-strong -fPIE $(if $(SAN),,-D_FORTIFY_SOURCE=2)
CFLAGS += $(HARDEN) -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	  -D_GNU_SOURCE -DMICROVM_VERSION='"$(VERSION)"' -ffile-prefix-map=$(CURDIR)=. -Isrc \
	  $(DEP_CFLAGS) $(SAN) -MMD -MP
LIBS := -lfdt $(shell $(PKG) --libs inih liburing zlib libseccomp jansson libprotobuf-c) -lhttp_parser \
	-lpthread
LDFLAGS += $(if $(LDSTATIC),$(LDSTATIC),-pie) -Wl,-z,relro,-z,now $(SAN)

# Every build describes both guest architectures; the KVM backend is the target host's.
ifeq ($(TARGET_ARCH),aarch64)
  KVM_SRC := src/arch/arm64/kvm.c src/arch/arm64/snap.c
else ifeq ($(TARGET_ARCH),x86_64)
  KVM_SRC := src/arch/x86/kvm.c src/arch/x86/snap.c
else
  KVM_SRC := src/kvm_none.c
endif
X86_SRCS := src/arch/x86/machine.c src/arch/x86/boot.c src/arch/x86/acpi.c src/arch/x86/platform.c

LIB_SRCS := src/alloc.c src/blob.c src/boot.c src/bus.c src/catalog.c src/config.c src/console.c src/term.c \
	    src/layout.c src/shorthand.c \
	    src/device.c src/log.c src/loop.c src/machine.c src/sandbox.c src/sanitize.c src/vm.c src/irq.c \
	    src/devices/uart.c src/devices/boottimer.c src/devices/vmgenid.c src/devices/registry.c src/timeline.c src/iov.c src/arch/arm64/arch.c src/arch/arm64/gic.c src/arch/arm64/fdt.c src/arch/arm64/image.c \
	    src/virtio/virtq.c src/virtio/virtio.c src/virtio/kickctl.c src/virtio/mmio.c src/virtio/transport.c src/virtio/adapter.c \
	    src/virtio/blk.c src/virtio/balloon.c src/backends/blkio.c src/pci/pci.c src/virtio/pci.c src/virtio/rng.c \
	    src/virtio/net.c src/virtio/vsock.c src/virtio/net_frame.c src/virtio/net_vhost.c src/backends/tap.c src/backends/vhost.c \
	    src/arch/arm64/gicv2m.c src/arch.c $(X86_SRCS) $(KVM_SRC) \
	    src/api/http.c src/api/api.c src/api/ctl.c src/snapshot/snapfile.c src/snapshot/snapshot.c \
	    src/snapshot/devstate.c
# Code generated at build time, under $(GEN) (found with -I$(GEN)): the snapshot state file's
# protobuf-c messages, from src/snapshot/snapshot.proto.
GEN := $(OUT)/gen
GEN_SRCS := $(GEN)/snapshot/snapshot.pb-c.c
GEN_HDRS := $(GEN_SRCS:.c=.h)
LIB_OBJS := $(LIB_SRCS:%.c=$(OUT)/obj/%.o) $(GEN_SRCS:$(GEN)/%.c=$(OUT)/obj/gen/%.o)
TEST_SRCS := $(wildcard tests/unit/*.c)
TEST_OBJS := $(TEST_SRCS:%.c=$(OUT)/obj/%.o)
CFLAGS += -I$(GEN)


.PHONY: all deps guest guest-x86_64 check check-stress run install uninstall man deb kvm-unit-tests bench-blk bench-net bench-boot bench-restore bench-devices bench-peers bench-x86 bench-sandbox fuzz format \
	format-check clean
all: $(OUT)/microvm

$(OUT)/microvm: $(OUT)/obj/src/main.o $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# Tests back NICs with socket pairs, without /dev/vhost-net: the TAP and vhost calls go to
# tests/unit/tapwrap.c, and the device lock passes through it (a test's hook).
TAPWRAP := -Wl,--wrap=tap_set_offload,--wrap=tap_set_queue_enabled,--wrap=vhost_net_open,--wrap=vhost_net_close,--wrap=vhost_net_set_features,--wrap=vhost_net_start,--wrap=vhost_net_set_call,--wrap=vhost_net_stop,--wrap=virtio_lock,--wrap=tap_deleted
$(OUT)/unit-tests: $(TEST_OBJS) $(LIB_OBJS)
	$(CC) $(LDFLAGS) $(TAPWRAP) -o $@ $^ $(LIBS)

$(OUT)/obj/src/main.o: VERSION
$(OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# protoc-c writes the .c and the .h together. Every object waits for them (order-only): from a
# clean tree no .d file says yet which ones include the header; after that the .d files do.
$(GEN_SRCS) $(GEN_HDRS) &: src/snapshot/snapshot.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=src --c_out=$(GEN) $<
$(OUT)/obj/gen/%.o: $(GEN)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<
$(LIB_OBJS) $(TEST_OBJS) $(OUT)/obj/src/main.o $(OUT)/obj/tests/bench/sandbox-cost.o: | $(GEN_HDRS)

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(OUT)/obj/src/main.d

# libFuzzer targets (clang only): fuzz_virtq, the descriptor walker and blk request parser;
# fuzz_console, the console's control-sequence filter;
# fuzz_transport, both transports' state machines driving virtio-blk and virtio-net with
# asynchronous completions; fuzz_api, the control API's request parser and dispatcher;
# fuzz_snapfile, the snapshot state file's reader; fuzz_config, machine descriptions read and
# checked (tests/fuzz/). Each is built from the sources (with the generated ones), not the
# objects.
FUZZ_TARGETS := build/fuzz/fuzz_virtq build/fuzz/fuzz_transport build/fuzz/fuzz_console \
		build/fuzz/fuzz_api build/fuzz/fuzz_snapfile build/fuzz/fuzz_config
FUZZ_CC := clang -std=gnu11 -g -O1 -D_GNU_SOURCE -DMICROVM_VERSION='"$(VERSION)"' -Isrc \
	   -I$(GEN) -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined
FUZZ_SRCS := $(LIB_SRCS) $(GEN_SRCS)
build/fuzz/fuzz_virtq: tests/fuzz/fuzz_virtq.c $(FUZZ_SRCS) $(wildcard src/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $< $(FUZZ_SRCS) $(LIBS)
build/fuzz/fuzz_transport: tests/fuzz/fuzz_transport.c tests/unit/tapwrap.c $(FUZZ_SRCS) \
		$(wildcard src/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(TAPWRAP) -o $@ $< tests/unit/tapwrap.c $(FUZZ_SRCS) $(LIBS)

# fuzz_api: requests cut into chunks, parsed and answered by the API on the default machine.
build/fuzz/fuzz_api: tests/fuzz/fuzz_api.c $(FUZZ_SRCS) $(wildcard src/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $< $(FUZZ_SRCS) $(LIBS)

# fuzz_config: machine descriptions of any bytes, read and checked as --check does.
build/fuzz/fuzz_config: tests/fuzz/fuzz_config.c $(FUZZ_SRCS) $(wildcard src/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $< $(FUZZ_SRCS) $(LIBS)

# fuzz_snapfile: state files checked and decoded, then walked through every accessor.
SNAPFILE_SRCS := src/snapshot/snapfile.c src/log.c $(GEN_SRCS)
build/fuzz/fuzz_snapfile: tests/fuzz/fuzz_snapfile.c $(SNAPFILE_SRCS) src/snapshot/snapfile.h \
		src/log.h src/le.h $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $< $(SNAPFILE_SRCS) $(shell $(PKG) --libs zlib libprotobuf-c)

# fuzz_console: the console's control-sequence filter (guest output with sanitize = on).
build/fuzz/fuzz_console: tests/fuzz/fuzz_console.c src/sanitize.c src/sanitize.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $< src/sanitize.c

# make fuzz FUZZ_SECONDS=600 runs every target that long, side by side;
# the corpora stay in build/fuzz/corpus-NAME, fuzz_transport's seeded to reach DRIVER_OK,
# fuzz_api's with Firecracker's getting-started requests and malformed ones, fuzz_snapfile's
# with a state file of a few sections and damaged copies of it, fuzz_config's with the
# machines and the bad machine descriptions; one grown past 500 inputs and twice its size at
# its last cut is cut (libFuzzer's -merge) first, and each run gets the time its last run
# took to read its corpus on top of FUZZ_SECONDS.
# The targets' own messages (guest mistakes they report) go to build/fuzz/NAME.log.
FUZZ_SECONDS ?= 30
fuzz: $(FUZZ_TARGETS)
	@./tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

deps:
	@./conf/install-deps.sh

# Guest kernel and initramfs (cached under $(CACHE), keyed on their inputs). Two builds of one
# cache entry at once (two clones, or make check beside make guest) would clobber each other's
# tree: each waits for the other's lock, then finds the entry built.
cache_lock = mkdir -p "$(CACHE)" && flock "$(CACHE)/$(1).lock"
guest: build/guest/Image build/guest/initramfs.cpio.gz build/guest/rootfs.ext4 build/guest/nettool \
	build/guest/tools.ext4
build/guest/Image: conf/guest-kernel.config guest-images/build-kernel.sh
	$(call cache_lock,kernel-arm64) ./guest-images/build-kernel.sh $@
# The initramfs carries nettool (timed TCP transfers) and the misbehaving drivers.
POKES := vnetpoke blkpoke rngpoke balloonpoke vsockpoke
build/guest/initramfs.cpio.gz: conf/guest-init conf/udhcpc.script conf/boot-timer-init \
		guest-images/build-initramfs.sh \
		build/guest/nettool $(POKES:%=build/guest/%)
	rm -rf build/guest/extra && mkdir -p build/guest/extra/bin
	cp build/guest/nettool $(POKES:%=build/guest/%) \
		build/guest/extra/bin/
	./guest-images/build-initramfs.sh $@ build/guest/extra
# The same, powering off as soon as init is reached whatever the command line (bench-peers).
build/guest/initramfs-poweroff.cpio.gz: build/guest/initramfs.cpio.gz
	mkdir -p build/guest/extra/etc && touch build/guest/extra/etc/microvm.poweroff
	./guest-images/build-initramfs.sh $@ build/guest/extra
	rm build/guest/extra/etc/microvm.poweroff
build/guest/rootfs.ext4: build/guest/initramfs.cpio.gz guest-images/build-rootfs.sh
	./guest-images/build-rootfs.sh $< $@ 32M
# The TCP transfer tool, for the guest and the emulated host (static arm64).
build/guest/nettool: tests/bench/nettool.c
	@mkdir -p $(dir $@)
	aarch64-linux-gnu-gcc -O2 -static -s -Wall -Wextra -Werror -o $@ $<
# Misbehaving virtio drivers for the boot tests (they run in the guest).
$(POKES:%=build/guest/%): build/guest/%: tests/boot/%.c \
		tests/boot/poke.h
	@mkdir -p $(dir $@)
	aarch64-linux-gnu-gcc -O2 -static -s -Wall -Wextra -Werror -o $@ $<

# The x86-64 guest: the minimal bzImage, a busybox initramfs and a root disk made of it.
guest-x86_64: build/guest-x86_64/bzImage build/guest-x86_64/initramfs.cpio.gz \
	build/guest-x86_64/rootfs.ext4 build/guest-x86_64/nettool
build/guest-x86_64/bzImage: conf/guest-kernel-x86_64.config guest-images/build-kernel.sh
	$(call cache_lock,kernel-x86_64) env GUEST_ARCH=x86_64 ./guest-images/build-kernel.sh $@
build/guest-x86_64/initramfs.cpio.gz: conf/guest-init conf/udhcpc.script conf/boot-timer-init \
		guest-images/build-initramfs.sh build/guest-x86_64/nettool
	rm -rf build/guest-x86_64/extra && mkdir -p build/guest-x86_64/extra/bin
	cp build/guest-x86_64/nettool build/guest-x86_64/extra/bin/
	GUEST_ARCH=x86_64 ./guest-images/build-initramfs.sh $@ build/guest-x86_64/extra
build/guest-x86_64/rootfs.ext4: build/guest-x86_64/initramfs.cpio.gz guest-images/build-rootfs.sh
	./guest-images/build-rootfs.sh $< $@ 32M
# The same, powering off as soon as init is reached (make bench-x86).
build/guest-x86_64/initramfs-poweroff.cpio.gz: build/guest-x86_64/initramfs.cpio.gz
	mkdir -p build/guest-x86_64/extra/etc && touch build/guest-x86_64/extra/etc/microvm.poweroff
	GUEST_ARCH=x86_64 ./guest-images/build-initramfs.sh $@ build/guest-x86_64/extra
	rm build/guest-x86_64/extra/etc/microvm.poweroff
# nettool for the emulated x86-64 host (and its guests): static, for this x86-64 machine.
build/guest-x86_64/nettool: tests/bench/nettool.c
	@mkdir -p $(dir $@)
	gcc -O2 -static -s -Wall -Wextra -Werror -o $@ $<

check: deps
	@./tests/run.sh

# The tests that could fail by chance, beside a CPU hog: the unit tests 20 times, one
# emulated host's boot group (tests/stress.sh). Not part of make check.
check-stress: deps
	@./tests/stress.sh

run: deps
	@./tests/boot/run.sh

# fio and iperf3 (Debian's arm64 builds with their libraries) for the benchmarks.
build/guest/tools.ext4: guest-images/build-tools.sh
	$(call cache_lock,tools) ./guest-images/build-tools.sh $@

# Block benchmark inside both emulated hosts (or natively): fio in the guest vs on the file.
bench-blk: deps guest build/guest/tools.ext4
	@./tests/bench/blk-run.sh

# Network benchmark: TCP guest <-> host per transport (root natively: it creates a TAP).
bench-net: deps guest build/guest/tools.ext4
	@./tests/bench/net-run.sh

# Peer comparison: microvm, kvmtool and kvm-host (built from KVMTOOL_SRC and KVM_HOST_SRC,
# source trees or tarballs) on the same workloads, interleaved in one run.
bench-peers: deps guest build/guest/tools.ext4 build/guest/initramfs-poweroff.cpio.gz
	@./tests/bench/peers-run.sh

# kvm-unit-tests' arm64 tests (KUT_SRC: a source tree or .tar.gz) under microvm in both emulated
# hosts (natively on an arm64 board), beside kvmtool when KVMTOOL_SRC is given: a table in
# build/kut/report.md; fails when microvm fails a test kvmtool passes.
kvm-unit-tests: deps
	@./tests/kut/run.sh

# x86-64 boot: microvm against QEMU -M microvm, side by side in the emulated x86-64 host.
bench-x86: deps
	@./tests/bench/x86-run.sh

# Boot benchmark: BOOT_ITER boots per case of the matrix, CSV + Markdown + plots.
bench-boot: deps guest
	@./tests/bench/boot-run.sh

# Snapshot restore against cold boot, per memory size; clones' memory (tests/bench/restore.sh).
bench-restore: deps guest
	@./tests/bench/restore-run.sh

# Devices: the guest's entropy with and without virtio-rng (tests/bench/devices.sh).
bench-devices: deps guest
	@./tests/bench/devices-run.sh

# The sandbox's set-up cost natively on this host (no KVM): filters built, lock-down.
$(OUT)/sandbox-cost: $(OUT)/obj/tests/bench/sandbox-cost.o $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
SANDBOX_RUNS ?= 200
bench-sandbox: $(OUT)/sandbox-cost
	@$(OUT)/sandbox-cost $(SANDBOX_RUNS)

# make install [PREFIX=/usr/local] [DESTDIR=...]: the binary, the machines (their kernel and
# initrd paths pointing at lib/microvm/guest*/, where the guest images that have been built
# go), the manual pages, bash completion and the documentation. make uninstall removes those
# files (and the directories they leave empty), nothing else.
PREFIX ?= /usr/local
BINDIR := $(PREFIX)/bin
DATADIR := $(PREFIX)/share/microvm
GUESTLIB := $(PREFIX)/lib/microvm
MANDIR := $(PREFIX)/share/man
DOCDIR := $(PREFIX)/share/doc/microvm
COMPDIR := $(PREFIX)/share/bash-completion/completions
MAN_DATE := $(shell git log -1 --format=%cs 2>/dev/null || date -u +%F)
GUESTS ?= build/guest build/guest-x86_64
GUEST_FILES := Image bzImage initramfs.cpio.gz
MACHINES := $(notdir $(wildcard machines/*.ini))
DOCS := README.md docs/architecture.md docs/benchmarks.md docs/config.md docs/networking.md docs/api.md \
	docs/snapshot.md
DOC_IMGS := $(notdir $(wildcard docs/img/*.png))
D := $(DESTDIR)
# The manual pages for PREFIX: microvm(1) as written, microvm.ini(5) made from docs/config.md.
MAN1 = sed 's/@VERSION@/$(VERSION)/; s/@DATE@/$(MAN_DATE)/; s|@PREFIX@|$(PREFIX)|g' man/microvm.1
MAN5 = awk -v version=$(VERSION) -v date=$(MAN_DATE) -v docdir='$(DOCDIR)/docs/' \
	-f man/md2man.awk docs/config.md

man:
	@mkdir -p build/man
	$(MAN1) >build/man/microvm.1
	$(MAN5) >build/man/microvm.ini.5

install: $(OUT)/microvm
	install -D -m 755 $(OUT)/microvm "$(D)$(BINDIR)/microvm"
	install -d "$(D)$(DATADIR)/machines" "$(D)$(MANDIR)/man1" "$(D)$(MANDIR)/man5" \
		"$(D)$(DOCDIR)/docs/img" "$(D)$(COMPDIR)"
	for f in $(MACHINES); do \
		sed 's|= *\.\./build/\(guest[a-z0-9_-]*\)/|= $(GUESTLIB)/\1/|' machines/$$f \
			>"$(D)$(DATADIR)/machines/$$f" && chmod 644 "$(D)$(DATADIR)/machines/$$f" || exit 1; \
	done
	for g in $(GUESTS); do \
		[ -f $$g/initramfs.cpio.gz ] || continue; \
		d="$(D)$(GUESTLIB)/$${g#build/}"; install -d "$$d" || exit 1; \
		for f in $(GUEST_FILES); do \
			[ ! -f $$g/$$f ] || install -m 644 $$g/$$f "$$d/" || exit 1; \
		done; \
	done
	[ -n "$(wildcard $(GUESTS:%=%/initramfs.cpio.gz))" ] || echo "install: no guest images" \
		"were built (make guest, make guest-x86_64): the machines' kernel and initrd are missing"
	$(MAN1) >"$(D)$(MANDIR)/man1/microvm.1" && chmod 644 "$(D)$(MANDIR)/man1/microvm.1"
	$(MAN5) >"$(D)$(MANDIR)/man5/microvm.ini.5" && chmod 644 "$(D)$(MANDIR)/man5/microvm.ini.5"
	install -m 644 dist/microvm.bash "$(D)$(COMPDIR)/microvm"
	install -m 644 README.md "$(D)$(DOCDIR)/"
	install -m 644 $(filter docs/%,$(DOCS)) "$(D)$(DOCDIR)/docs/"
	install -m 644 $(DOC_IMGS:%=docs/img/%) "$(D)$(DOCDIR)/docs/img/"

uninstall:
	rm -f "$(D)$(BINDIR)/microvm" "$(D)$(MANDIR)/man1/microvm.1" \
		"$(D)$(MANDIR)/man5/microvm.ini.5" "$(D)$(COMPDIR)/microvm"
	for f in $(MACHINES); do rm -f "$(D)$(DATADIR)/machines/$$f"; done
	for g in $(GUESTS); do for f in $(GUEST_FILES); do \
		rm -f "$(D)$(GUESTLIB)/$${g#build/}/$$f"; done; \
		rmdir "$(D)$(GUESTLIB)/$${g#build/}" 2>/dev/null || true; done
	for f in $(DOCS) $(DOC_IMGS:%=docs/img/%); do rm -f "$(D)$(DOCDIR)/$$f"; done
	for d in "$(D)$(DATADIR)/machines" "$(D)$(DATADIR)" "$(D)$(GUESTLIB)" \
		"$(D)$(DOCDIR)/docs/img" "$(D)$(DOCDIR)/docs" "$(D)$(DOCDIR)"; do \
		rmdir "$$d" 2>/dev/null || true; done

# make deb: build/deb/microvm_VERSION_arm64.deb, and _amd64.deb on an x86-64 host; lintian
# checks each where it is installed.
deb: deps
	@./dist/deb.sh

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf build
