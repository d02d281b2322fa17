/*
 * Unit tests: opening a snapshot for a restore (snapshot_open, snapshot_machine) refuses a
 * state this host cannot run, or one that does not agree with itself, with the reason, before
 * anything is built: another architecture, host page size or state version, a memory file
 * name that leaves the state's directory, a memory file of another size or kind, a machine
 * description of another architecture or RAM size than the state says.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvm_arch.h"
#include "arch.h"
#include "machine.h"
#include "snapshot/snapfile.h"
#include "snapshot/snapshot.h"
#include "test.h"

#define RAM (1ull << 20)

static char dir[] = "/tmp/mv-snapopen-XXXXXX";

/* What a state says, each a valid value unless a case changes it. */
struct spec {
	uint64_t version, page, ram;
	const char *arch, *mem, *ini, *pin;
};

static struct spec good(void)
{
	return (struct spec){.version = SNAPSHOT_STATE_VERSION,
			     .page = (uint64_t)sysconf(_SC_PAGESIZE),
			     .ram = RAM,
			     .arch = kvm_guest_arch->name,
			     .mem = "vm.mem",
			     .ini = kvm_guest_arch->default_machine};
}

/* Write state file "vm.state" for sp; the memory file "vm.mem" of size mem_size. */
static void write_state(const struct spec *sp, off_t mem_size)
{
	struct snap *s = snap_new();
	struct snap_sec *sec = snap_add(s, "snapshot"), *ms = snap_add(s, "machine");
	char path[64];
	int fd;

	CHECK(sec && ms);
	CHECK(!snap_put_u64(sec, "state_version", sp->version));
	CHECK(!snap_put_text(sec, "arch", sp->arch));
	CHECK(!snap_put_u64(sec, "page_size", sp->page));
	CHECK(!snap_put_u64(sec, "ram_size", sp->ram));
	CHECK(!snap_put_u64(sec, "vcpus", 1));
	CHECK(!snap_put_text(sec, "mem_file", sp->mem));
	CHECK(!snap_put_text(ms, "ini", sp->ini));
	if (sp->pin)
		CHECK(!snap_put_text(ms, "pin", sp->pin));
	snprintf(path, sizeof(path), "%s/vm.state", dir);
	unlink(path);
	CHECK(!snap_write(s, AT_FDCWD, path));
	snap_free(s);
	snprintf(path, sizeof(path), "%s/vm.mem", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0 && ftruncate(fd, mem_size) == 0);
	if (fd >= 0)
		close(fd);
}

/* snapshot_open of the state written: its result. */
static int open_state(struct snapshot_in *in)
{
	char path[64];

	snprintf(path, sizeof(path), "%s/vm.state", dir);
	return snapshot_open(in, path, NULL);
}

static void test_refused_open(void)
{
	struct spec sp = good();
	struct snapshot_in in;

	write_state(&sp, RAM);
	CHECK_EQ(open_state(&in), 0);
	snapshot_close(&in);

	sp = good();
	sp.arch = kvm_guest_arch == &arch_arm64 ? arch_x86_64.name : arch_arm64.name;
	write_state(&sp, RAM);
	CHECK_EQ(open_state(&in), -ENOTSUP); /* "a snapshot of an aarch64 machine; ..." */
	snapshot_close(&in);

	sp = good();
	sp.page = sp.page == 4096 ? 16384 : 4096;
	write_state(&sp, RAM);
	CHECK_EQ(open_state(&in), -ENOTSUP); /* "taken on a host with N KiB pages" */
	snapshot_close(&in);

	sp = good();
	sp.version = SNAPSHOT_STATE_VERSION + 1;
	write_state(&sp, RAM);
	CHECK_EQ(open_state(&in), -EINVAL);
	snapshot_close(&in);

	sp = good();
	sp.mem = "../vm.mem";
	write_state(&sp, RAM);
	CHECK_EQ(open_state(&in), -EINVAL); /* not a plain file name */
	snapshot_close(&in);

	sp = good();
	write_state(&sp, RAM / 2);
	CHECK_EQ(open_state(&in), -EINVAL); /* "is 524288 bytes; the snapshot's RAM is ..." */
	snapshot_close(&in);

	sp = good();
	sp.mem = "adir";
	write_state(&sp, RAM);
	{
		char path[64];

		snprintf(path, sizeof(path), "%s/adir", dir);
		CHECK(mkdir(path, 0700) == 0);
		CHECK_EQ(open_state(&in), -EINVAL); /* "is no regular file of" */
		snapshot_close(&in);
		rmdir(path);
	}
}

/* The state's own machine description must be of its architecture and RAM size. */
static void test_refused_machine(void)
{
	const struct arch *other = kvm_guest_arch == &arch_arm64 ? &arch_x86_64 : &arch_arm64;
	struct spec sp = good();
	struct snapshot_in in;
	struct machine m;

	/* The architecture's default machine has another RAM size than the state's 1 MiB. */
	write_state(&sp, RAM);
	CHECK_EQ(open_state(&in), 0);
	CHECK_EQ(snapshot_machine(&in, NULL, 0, &m), -EINVAL);
	machine_free(&m);
	snapshot_close(&in);

	/* The other architecture's default machine (1 vCPU, 128 MiB) under a state of this one. */
	sp.ini = other->default_machine;
	sp.ram = 128ull << 20;
	write_state(&sp, (off_t)sp.ram);
	CHECK_EQ(open_state(&in), 0);
	CHECK_EQ(snapshot_machine(&in, NULL, 0, &m), -EINVAL);
	machine_free(&m);
	snapshot_close(&in);

	/* This architecture's own default machine loads; a pin may not set the host side. */
	sp = good();
	sp.ram = 128ull << 20;
	write_state(&sp, (off_t)sp.ram);
	CHECK_EQ(open_state(&in), 0);
	CHECK_EQ(snapshot_machine(&in, NULL, 0, &m), 0);
	machine_free(&m);
	snapshot_close(&in);
	for (size_t i = 0; i < 3; i++) {
		static const char *const pins[] = {"machine.seccomp=off", "machine.user=0",
						   "gic.version=2\nmachine.seccomp=off"};

		sp.pin = pins[i];
		write_state(&sp, (off_t)sp.ram);
		CHECK_EQ(open_state(&in), 0);
		CHECK_EQ(snapshot_machine(&in, NULL, 0, &m), -EINVAL);
		machine_free(&m);
		snapshot_close(&in);
	}
}

void test_snapopen(void)
{
	char path[64];

	if (!kvm_guest_arch) {
		printf("    (this build runs no guests here: nothing to restore)\n");
		return;
	}
	if (!mkdtemp(dir)) {
		CHECK(0);
		return;
	}
	TEST_RUN(test_refused_open);
	TEST_RUN(test_refused_machine);
	snprintf(path, sizeof(path), "%s/vm.state", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/vm.mem", dir);
	unlink(path);
	rmdir(dir);
}
