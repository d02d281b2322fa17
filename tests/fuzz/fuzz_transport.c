/*
 * libFuzzer target: the transport state machines (virtio-mmio registers; virtio-pci common
 * configuration, notify, ISR and MSI-X table behind ECAM configuration space, which the x86
 * platform's ports 0xcf8/0xcfc reach too) driving
 * virtio-blk (io_uring, sync and inline engines, on a real image file) and virtio-net (its TAP
 * queues socket pairs, which may be shut down as a deleted TAP; once more with vhost = on, the
 * kernel's data path modelled by tests/unit/tapwrap.c), with asynchronous completions, kicks,
 * received frames and the kernel's interrupt and ring-error signals arriving between any two guest
 * accesses; virtio-rng (its rate limit's timer firing between them), virtio-vsock (host programs
 * connecting to its Unix socket, writing, closing, and host listeners the guest's connections
 * reach, between any two guest accesses), virtio-balloon (every queue offered, its statistics timer
 * firing and its target changing between any two guest accesses; the pages it discards lie in the
 * bench's RAM), and the VM paused and resumed between any two of them. Guest RAM is exactly
 * RAM_SIZE bytes of heap, so ASan sees any access the device makes outside it. While paused the
 * guest makes no access (its vCPUs are parked) and the target aborts if the device writes guest RAM
 * or still has block I/O in flight. A snapshot between any two operations saves the (paused)
 * device, builds it again fresh on the same RAM and host side, and restores the state into it: as
 * saved (it must be taken back), or with one field changed by the input (it may be refused,
 * leaving the device fresh); the sequence goes on with the new device either way.
 *
 * Input: one byte choosing the device, the transport and whether block completions are
 * reaped only by the event loop (else also while they are submitted), then operations of an 8-byte
 * header (kind, size, offset, value) and, for RAM writes and frames, size bytes of payload.
 * MICROVM_FUZZ_SEEDS=DIR writes a corpus that reaches DRIVER_OK with I/O on both
 * transports into DIR and exits.
 */
#include <endian.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <linux/pci_regs.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "array.h"
#include "irq.h"
#include "le.h"
#include "loop.h"
#include "machine.h"
#include "pci/pci.h"
#include "snapshot/snapfile.h"
#include "virtio/adapter.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"
#include "virtio/vsock.h"
#include "vm.h"
#include "arch/x86/x86.h"

#include "../unit/tapwrap.h"

#define GPA	 0x40000000ull
#define RAM_SIZE 0x10000u
#define MAX_OPS	 256

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum kind {
	K_WRITE,     /* transport register write: offset, value, width: size % 9 of 0, 1 and
		      * 2 is 1, 2 and 4 bytes, 3 to 8 that many (any width a KVM exit has) */
	K_READ,	     /* transport register read */
	K_CFG_WRITE, /* PCI configuration space write (virtio-mmio: ignored), widths as above */
	K_CFG_READ,
	K_MEM,	 /* copy size payload bytes into RAM at offset */
	K_POLL,	 /* one event loop pass: completions, kicks, frames */
	K_WAIT,	 /* events until none comes for a while (the engines finish meanwhile) */
	K_KICK,	 /* signal queue value's kick eventfd (the ioeventfd path) */
	K_FRAME, /* the host sends a frame of size payload bytes to queue pair value; vsock: a
		  * host program connects and writes the payload (value % 4 == 0), writes it
		  * on its connection value / 4 % 4 (1), closes that (2), shuts its writing
		  * side down (3) */
	K_DRAIN, /* the host reads what the guest transmitted (vsock: accepts, reads) */
	K_VHOST, /* vhost: pair value & 1, ring (value >> 1) & 1 signals call, or err if value & 4
		  */
	K_PIO,	 /* x86 I/O port offset (CF8/CFC, ACPI, i8042): 1 << (size % 3) bytes, write if
		  * size & 4 */
	K_PAUSE, /* the VM pauses (value & 1) or resumes: the device's pause or resume hook */
	K_SNAP,	 /* save the device, restore the state into a fresh one, go on with it */
	K_SNAP_BAD, /* the same with field offset changed (size says how, value the new value) */
	K_BALLOON,  /* balloon: the statistics timer fires (value & 1) or the target becomes
		     * value >> 1 MiB (refused beyond the machine's RAM) */
	K_TAP_GONE, /* net: pair value & 1's TAP is deleted on the host (its descriptor, shut
		     * down, reports EPOLLHUP from then on) */
	K_NKINDS,
};

struct op {
	uint8_t kind, size;
	uint16_t off;
	uint32_t val;
};

enum target {
	T_BLK_URING,
	T_BLK_SYNC,
	T_BLK_INLINE,
	T_NET,
	T_NET_VHOST,
	T_RNG,
	T_VSOCK,
	T_BALLOON,
	T_NTARGETS
};

#define HOST_CONNS 4 /* vsock: host programs connected at once */
#define LISTENERS  2 /* vsock: host ports 1000 and 1001 that guest connections reach */

static struct machine machine;
static struct device *devs[T_NTARGETS];
static char image[3][64]; /* one for each disk: one writable image is never two disks */
static char vsock_dir[64], vsock_path[96];
static int listeners[LISTENERS] = {-1, -1};

static struct device *find(const char *name)
{
	for (size_t i = 0; i < machine.ndevices; i++)
		if (!strcmp(machine.devices[i].name, name))
			return &machine.devices[i];
	return NULL;
}

static void write_seeds(const char *dir);
/* MICROVM_FUZZ_TRACE: say where an input got the device (to check the seeds). */
static bool trace;

static void unlink_image(void)
{
	char path[128];

	for (int i = 0; i < 3; i++)
		unlink(image[i]);
	if (!*vsock_dir)
		return;
	unlink(vsock_path);
	for (int i = 0; i < LISTENERS; i++) {
		snprintf(path, sizeof(path), "%s_%d", vsock_path, 1000 + i);
		unlink(path);
	}
	rmdir(vsock_dir);
}

/* vsock: its Unix socket, and host listeners on ports 1000 and 1001. */
static bool vsock_host(struct device *dev)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (vsock_listen(dev))
		return false;
	for (int i = 0; i < LISTENERS; i++) {
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%d", vsock_path, 1000 + i);
		listeners[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (listeners[i] < 0 || bind(listeners[i], (struct sockaddr *)&sa, sizeof(sa)) ||
		    listen(listeners[i], 64))
			return false;
	}
	return true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path0[64], path1[64], path2[64], uds[128];
	char *sets[] = {
		"machine.vcpus=2",
		"blk0.type=virtio-blk",
		path0,
		"blk0.queue_size=8",
		"blk0.engine=io_uring",
		"blk1.type=virtio-blk",
		path1,
		"blk1.queue_size=8",
		"blk1.engine=sync",
		"blk2.type=virtio-blk",
		path2,
		"blk2.queue_size=8",
		"blk2.engine=inline",
		"net0.type=virtio-net",
		"net0.tap=mvfuzz%d",
		"net0.queues=2",
		"net0.queue_size=16",
		"net1.type=virtio-net",
		"net1.tap=mvfuzz%d",
		"net1.queues=2",
		"net1.queue_size=16",
		"net1.vhost=on",
		/* a bucket of 256 bytes at 64 KiB/s: buffers wait for its timer */
		"rng0.type=virtio-rng",
		"rng0.queue_size=8",
		"rng0.rate_limit=64K",
		"rng0.rate_burst=256",
		"vsock0.type=virtio-vsock",
		"vsock0.cid=3",
		"vsock0.queue_size=8",
		uds,
		"balloon.type=virtio-balloon",
		"balloon.queue_size=8",
		"balloon.stats_polling_interval_s=1",
		"balloon.deflate_on_oom=on",
		"balloon.free_page_reporting=on",
	};
	int fd;

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN); /* as microvm: a TAP stand-in shut down answers EPIPE */
	/* tmpfs when there is one: a flush there costs nothing. */
	for (int i = 0; i < 3; i++) {
		snprintf(image[i], sizeof(image[i]), "%s/microvm-fuzz-XXXXXX",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
		fd = mkstemp(image[i]);
		if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
			abort();
		close(fd);
	}
	snprintf(path0, sizeof(path0), "blk0.path=%s", image[0]);
	snprintf(path1, sizeof(path1), "blk1.path=%s", image[1]);
	snprintf(path2, sizeof(path2), "blk2.path=%s", image[2]);
	snprintf(vsock_dir, sizeof(vsock_dir), "/tmp/mvfuzz-vsock-XXXXXX");
	if (!mkdtemp(vsock_dir))
		abort();
	snprintf(vsock_path, sizeof(vsock_path), "%s/v.sock", vsock_dir);
	snprintf(uds, sizeof(uds), "vsock0.uds_path=%s", vsock_path);
	if (machine_load(&machine, "machines/rpi5.ini", sets, ARRAY_SIZE(sets), true)) {
		fprintf(stderr, "fuzz_transport: run from the top of the tree\n");
		abort();
	}
	devs[T_BLK_URING] = find("blk0");
	devs[T_BLK_SYNC] = find("blk1");
	devs[T_BLK_INLINE] = find("blk2");
	devs[T_NET] = find("net0");
	devs[T_NET_VHOST] = find("net1");
	devs[T_RNG] = find("rng0");
	devs[T_VSOCK] = find("vsock0");
	if (!vsock_host(devs[T_VSOCK]))
		abort();
	devs[T_BALLOON] = find("balloon");
	trace = getenv("MICROVM_FUZZ_TRACE");
	if (getenv("MICROVM_FUZZ_SEEDS")) {
		write_seeds(getenv("MICROVM_FUZZ_SEEDS"));
		unlink_image();
		exit(0);
	}
	atexit(unlink_image);
	return 0;
}

/* The world one input runs in. */
struct bench {
	enum target target;
	bool pci;
	struct device *dev;
	struct virtio_dev *vd;
	uint8_t *ram;
	struct guest_mem mem;
	struct virtio_mmio mmio;
	struct virtio_pci vpci;
	struct pci_host host;
	struct vm vm; /* its loop is the event loop (PCI: the function's kicks are taken off it) */
	int irqfd;
	int fds[2], peer[2];
	int hconn[HOST_CONNS]; /* vsock: host programs' connections, -1 when none */
	bool defer;	 /* blk: completions only from the event loop, never during submission */
	uint8_t *paused; /* while paused: guest RAM as the pause left it, else NULL */
};

static bool is_net(enum target t)
{
	return t == T_NET || t == T_NET_VHOST;
}

static bool is_blk(enum target t)
{
	return t == T_BLK_URING || t == T_BLK_SYNC || t == T_BLK_INLINE;
}

/* virtio-mmio's interrupt, as the transport raises it (an irqfd): an eventfd here. */
static void mmio_interrupt(struct virtio_dev *vd, int vq)
{
	uint64_t one = 1;

	(void)vq;
	if (write(((struct virtio_mmio *)vd->transport)->irqfd, &one, sizeof(one)) < 0)
		abort();
}

static const struct virtio_transport_ops mmio_tops = {.interrupt = mmio_interrupt};

/* The device's virtio side over the bench's RAM and host side, on its transport. */
static bool device_up(struct bench *b)
{
	struct virtio_adapter *a = b->dev->priv;

	if (is_net(b->target)) {
		if (net_start(b->dev, b->fds, &b->mem, &b->vm.loop, &b->vd))
			return false;
	} else if (b->target == T_RNG) {
		if (rng_start(b->dev, &b->mem, &b->vm.loop, &b->vd))
			return false;
	} else if (b->target == T_VSOCK) {
		if (vsock_start(b->dev, &b->mem, &b->vm.loop, &b->vd))
			return false;
	} else if (b->target == T_BALLOON) {
		if (balloon_start(b->dev, &b->mem, &b->vm.loop, &b->vd))
			return false;
	} else if (blk_start(b->dev, &b->mem, &b->vm.loop, &b->vd)) {
		return false;
	} else {
		blk_defer_completions(b->dev, b->defer);
	}
	/* The adapter's snapshots look at the transport through vd->transport and this. */
	a->tr.kind = b->pci ? VIRTIO_TRANSPORT_PCI : VIRTIO_TRANSPORT_MMIO;
	if (virtio_kicks_open(b->vd, &b->vm.loop))
		return false;
	if (!b->pci) {
		b->mmio = (struct virtio_mmio){.vd = b->vd, .irqfd = b->irqfd};
		b->vd->transport = &b->mmio;
		b->vd->tops = &mmio_tops;
		return true;
	}
	if (virtio_pci_init(&b->vpci, b->vd, 1, true, 0x018000, "fuzz"))
		return false;
	b->vpci.vm = &b->vm;
	b->vpci.intx_fd = b->irqfd;
	return pci_host_attach(&b->host, &b->vpci.pdev) == 0;
}

/* Undo device_up: off the transport (kicks included), the device stopped. */
static void device_down(struct bench *b)
{
	if (b->pci && b->vpci.vd) {
		b->vpci.intx_fd = -1; /* the bench's, closed with it */
		virtio_pci_detach(&b->vpci);
		b->host.slots[b->vpci.pdev.slot] = NULL;
		memset(&b->vpci, 0, sizeof(b->vpci));
	}
	if (b->vd)
		virtio_kicks_close(b->vd, &b->vm.loop);
	if (is_net(b->target))
		net_stop(b->dev);
	else if (b->target == T_RNG)
		rng_stop(b->dev);
	else if (b->target == T_VSOCK)
		vsock_stop(b->dev);
	else if (b->target == T_BALLOON)
		balloon_stop(b->dev);
	else
		blk_stop(b->dev);
	b->vd = NULL;
}

static bool setup(struct bench *b, uint8_t choice)
{
	memset(b, 0, sizeof(*b));
	b->target = (enum target)((choice & 0x3f) % T_NTARGETS);
	b->pci = choice & 0x80;
	b->defer = choice & 0x40;
	b->dev = devs[b->target];
	b->fds[0] = b->fds[1] = b->peer[0] = b->peer[1] = -1;
	for (int i = 0; i < HOST_CONNS; i++)
		b->hconn[i] = -1;
	b->ram = malloc(RAM_SIZE);
	memset(b->ram, 0, RAM_SIZE);
	b->mem = (struct guest_mem){.hva = b->ram, .gpa = GPA, .size = RAM_SIZE};
	b->irqfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop_init(&b->vm.loop))
		return false;
	for (int i = 0; is_net(b->target) && i < 2; i++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
			return false;
		b->fds[i] = sv[0];
		b->peer[i] = sv[1];
	}
	if (b->pci) {
		/* A VM without KVM: BARs map onto its bus, MSI routes fail (nothing is
		 * delivered); the x86 platform's ports onto the same host bridge (the VM never
		 * runs: a power-off or reset only records a status). */
		b->vm.vm_fd = -1;
		b->vm.m = &machine;
		bus_init(&b->vm.bus);
		bus_init(&b->vm.pio);
		irq_ctl_init(&b->vm.irq, &b->vm);
		pci_host_init(&b->host, &machine);
		b->vm.pci = &b->host;
		if (x86_platform_realize(&b->vm))
			return false;
	}
	return device_up(b);
}

static void teardown(struct bench *b)
{
	device_down(b);
	if (b->pci) {
		bus_free(&b->vm.bus);
		bus_free(&b->vm.pio);
		free(b->vm.arch_priv);
		irq_ctl_free(&b->vm.irq);
		pthread_mutex_destroy(&b->host.lock);
	}
	loop_free(&b->vm.loop);
	for (int i = 0; i < 2; i++) {
		if (b->fds[i] >= 0)
			close(b->fds[i]);
		if (b->peer[i] >= 0)
			close(b->peer[i]);
	}
	for (int i = 0; i < HOST_CONNS; i++)
		if (b->hconn[i] >= 0)
			close(b->hconn[i]);
	close(b->irqfd);
	free(b->ram);
}

/*
 * Run the loop while events keep coming: the engines complete on tmpfs within microseconds
 * (io_uring often at submission, the sync worker once scheduled), so a few idle rounds with
 * a yield between them end it without sleeping.
 */
static void settle(struct loop *l)
{
	for (int idle = 0, rounds = 0; idle < 50 && rounds < 2000; rounds++) {
		if (loop_poll(l, 0) > 0) {
			idle = 0;
			continue;
		}
		idle++;
		sched_yield();
	}
}

/* The access width an op gives (see K_WRITE): 1 to 8 bytes, the common ones more often. */
static uint32_t op_width(const struct op *o)
{
	uint32_t s = o->size % 9;

	return s < 3 ? 1u << s : s;
}

static void reg_access(struct bench *b, const struct op *o, bool is_write)
{
	uint8_t buf[8];
	uint32_t len = op_width(o);

	le64_put(buf, o->val);
	if (b->pci)
		virtio_pci_bar_access(&b->vpci, o->off % VPCI_BAR_SIZE, buf, len, is_write);
	else
		virtio_mmio_access(&b->mmio, o->off % 0x200, buf, len, is_write);
}

static void cfg_access(struct bench *b, const struct op *o, bool is_write)
{
	uint32_t len = op_width(o);
	uint8_t buf[8] = {0};

	le32_put(buf, o->val);
	if (b->pci)
		pci_ecam_access(&b->host, (1u << 15) | (o->off & 0xfff), buf, len, is_write);
}

static void drain(struct bench *b)
{
	uint8_t frame[2048];
	int fd;

	for (int i = 0; i < 2; i++)
		while (b->peer[i] >= 0 && recv(b->peer[i], frame, sizeof(frame), 0) > 0)
			;
	for (int i = 0; i < HOST_CONNS; i++)
		while (b->hconn[i] >= 0 &&
		       recv(b->hconn[i], frame, sizeof(frame), MSG_DONTWAIT) > 0)
			;
	/* What the guest's connections reached: read at once, then closed. */
	for (int i = 0; b->target == T_VSOCK && i < LISTENERS; i++)
		while ((fd = accept4(listeners[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >=
		       0) {
			while (recv(fd, frame, sizeof(frame), 0) > 0)
				;
			close(fd);
		}
}

/* A host program's action on the vsock device's Unix socket (K_FRAME). */
static void vsock_host_op(struct bench *b, uint32_t val, const uint8_t *payload, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int *fd = &b->hconn[val / 4 % HOST_CONNS];

	switch (val % 4) {
	case 0:
		for (fd = b->hconn; fd < b->hconn + HOST_CONNS && *fd >= 0; fd++)
			;
		if (fd == b->hconn + HOST_CONNS)
			return;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", vsock_path);
		*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (*fd < 0 || connect(*fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			if (*fd >= 0)
				close(*fd);
			*fd = -1;
			return;
		}
		/* fall through: it writes the payload */
	case 1:
		if (*fd >= 0 && len && send(*fd, payload, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
		    errno != EAGAIN && errno != EPIPE && errno != ECONNRESET)
			abort();
		return;
	case 2:
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return;
	default:
		if (*fd >= 0)
			shutdown(*fd, SHUT_WR);
	}
}

/* A guest access: none while paused (the vCPUs are parked). */
static bool guest_op(enum kind k)
{
	return k == K_WRITE || k == K_READ || k == K_CFG_WRITE || k == K_CFG_READ || k == K_MEM ||
	       k == K_PIO;
}

/*
 * Pause (on) or resume the device as vm_pause and vm_resume do. A pause returns with the
 * block I/O in flight finished; from then on guest RAM must not change until the resume.
 */
static void pause_op(struct bench *b, bool on)
{
	if (on && !b->paused) {
		if (b->dev->ops->pause(b->dev))
			return; /* not paused: the device runs on */
		if (is_blk(b->target) && blk_inflight(b->dev))
			abort();
		b->paused = malloc(RAM_SIZE);
		memcpy(b->paused, b->ram, RAM_SIZE);
	} else if (!on && b->paused) {
		free(b->paused);
		b->paused = NULL;
		b->dev->ops->resume(b->dev);
	}
}

/* A copy of section name of st with field i changed as o says (dropped, or another value). */
static struct snap *mutated(const struct snap *st, const char *name, const struct op *o)
{
	const struct snap_sec *from = snap_find(st, name);
	struct snap *c = snap_new();
	struct snap_sec *to = c ? snap_add(c, name) : NULL;
	size_t n = snap_nfields(from), i = o->off % (n ? n : 1);

	for (size_t k = 0; to && k < n; k++) {
		struct snap_field_view f;
		uint8_t buf[512];
		size_t len;

		snap_field_at(from, k, &f);
		if (k == i && o->size % 4 == 0)
			continue; /* dropped */
		if (f.type == SNAP_U64) {
			/* Another value, one bit flipped, or one past a boundary. */
			uint64_t v = k != i		? f.u64
				     : o->size % 4 == 1 ? (uint64_t)o->val << (o->size / 4 % 2 * 32)
				     : o->size % 4 == 2 ? f.u64 ^ (1ull << (o->val % 64))
							: f.u64 + (int32_t)o->val;

			snap_put_u64(to, f.name, v);
		} else if (f.type == SNAP_BYTES && k == i && f.len <= sizeof(buf)) {
			/* A byte changed, or cut short, or one more. */
			len = o->size % 4 == 1	 ? f.len
			      : o->size % 4 == 2 ? o->val % (f.len + 1)
						 : f.len + (f.len < sizeof(buf));
			memcpy(buf, f.data, f.len);
			if (f.len && o->size % 4 == 1)
				buf[o->val % f.len] ^= (uint8_t)(o->val >> 16) | 1;
			if (len > f.len)
				buf[f.len] = (uint8_t)o->val;
			snap_put_bytes(to, f.name, buf, len);
		} else if (f.type == SNAP_BYTES) {
			snap_put_bytes(to, f.name, f.data, f.len);
		} else {
			snap_put_text(to, f.name, k == i ? (o->val & 1 ? "pci" : "mmio") : f.data);
		}
	}
	return c;
}

/*
 * Snapshot the device and restore it into a fresh one (vm_pause, the state saved, a new
 * process building the same machine over the saved RAM, the device restored; here the same
 * RAM and host side). A state as saved must be taken back; one with a field changed may be
 * refused, which leaves the device as it was built. Either way the sequence goes on with it.
 */
static void snap_op(struct bench *b, const struct op *o, bool change)
{
	const char *name = b->dev->name;
	struct snap *st = snap_new(), *in;
	struct snap_sec *sec = st ? snap_add(st, name) : NULL;
	int err;

	pause_op(b, true);
	if (!b->paused) {
		snap_free(st); /* the pause failed: the VM runs on, nothing is saved */
		return;
	}
	if (!sec || b->dev->ops->save(b->dev, sec))
		abort(); /* a paused device always saves */
	in = change ? mutated(st, name, o) : st;
	device_down(b);
	if (!device_up(b))
		abort();
	free(b->paused);
	b->paused = NULL; /* the restore resumes it; a fresh device runs */
	err = in ? b->dev->ops->restore(b->dev, snap_find(in, name)) : 0;
	if (err && !change)
		abort(); /* a state the device was in is always taken back */
	if (trace)
		fprintf(stderr, "fuzz_transport: snapshot %s%s\n", change ? "changed, " : "",
			err ? "refused" : "restored");
	if (in != st)
		snap_free(in);
	snap_free(st);
}

static void print_state(struct bench *b)
{
	fprintf(stderr, "fuzz_transport: %s on %s: status 0x%x", b->dev->name,
		b->pci ? "pci" : "mmio", b->vd->status);
	for (unsigned q = 0; q < b->vd->nvqs; q++) {
		const struct virtq *vq = &b->vd->vqs[q];

		if (vq->ready)
			fprintf(stderr, ", queue %u used %u", q,
				le16toh(((volatile uint16_t *)vq->used)[1]));
	}
	fprintf(stderr, "\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bench b;
	size_t pos = 1;
	unsigned n = 0;

	if (size < 1)
		return 0;
	if (!setup(&b, data[0])) {
		teardown(&b);
		return 0;
	}
	while (pos + sizeof(struct op) <= size && n++ < MAX_OPS) {
		struct op o;
		const uint8_t *payload;

		memcpy(&o, data + pos, sizeof(o));
		o.off = le16toh(o.off);
		o.val = le32toh(o.val);
		pos += sizeof(o);
		payload = data + pos;
		if (b.paused && guest_op(o.kind % K_NKINDS)) {
			if (o.kind % K_NKINDS == K_MEM)
				pos += o.size < size - pos ? o.size : size - pos;
			continue;
		}
		switch (o.kind % K_NKINDS) {
		case K_WRITE:
			reg_access(&b, &o, true);
			break;
		case K_READ:
			reg_access(&b, &o, false);
			break;
		case K_CFG_WRITE:
			cfg_access(&b, &o, true);
			break;
		case K_CFG_READ:
			cfg_access(&b, &o, false);
			break;
		case K_MEM: {
			size_t len = o.size;

			if (len > size - pos)
				len = size - pos;
			if (len <= RAM_SIZE - o.off) /* RAM is the 64 KiB an offset reaches */
				memcpy(b.ram + o.off, payload, len);
			pos += len;
			break;
		}
		case K_POLL:
			loop_poll(&b.vm.loop, 0);
			break;
		case K_WAIT:
			settle(&b.vm.loop);
			break;
		case K_KICK:
			if (o.val < b.vd->nvqs) {
				uint64_t one = 1;

				if (write(b.vd->kicks[o.val].fd, &one, sizeof(one)) < 0)
					abort();
			}
			break;
		case K_FRAME: {
			size_t len = o.size;

			if (len > size - pos)
				len = size - pos;
			if (is_net(b.target) && send(b.peer[o.val & 1], payload, len, 0) < 0 &&
			    errno != EAGAIN && errno != EPIPE)
				abort();
			if (b.target == T_VSOCK)
				vsock_host_op(&b, o.val, payload, len);
			pos += len;
			break;
		}
		case K_DRAIN:
			drain(&b);
			break;
		case K_VHOST:
			vhostwrap_signal(o.val & 1, (o.val >> 1) & 1, o.val & 4);
			break;
		case K_PIO:
			if (b.pci) {
				uint8_t buf[4];

				le32_put(buf, o.val);
				bus_access(&b.vm.pio, o.off, buf, 1u << (o.size % 3), o.size & 4);
			}
			break;
		case K_PAUSE:
			pause_op(&b, o.val & 1);
			break;
		case K_TAP_GONE:
			if (is_net(b.target))
				shutdown(b.fds[o.val & 1], SHUT_RDWR);
			break;
		case K_SNAP:
		case K_SNAP_BAD:
			snap_op(&b, &o, o.kind % K_NKINDS == K_SNAP_BAD);
			break;
		case K_BALLOON:
			if (b.target == T_BALLOON && (o.val & 1))
				balloon_stats_tick(b.dev);
			else if (b.target == T_BALLOON)
				balloon_set_target(b.dev, o.val >> 1);
			break;
		}
		/* Paused: nothing the host did since may have reached guest RAM. */
		if (b.paused && memcmp(b.paused, b.ram, RAM_SIZE))
			abort();
	}
	free(b.paused);
	/* Whatever the engines still do finishes now, as at a real shutdown. */
	loop_poll(&b.vm.loop, 0);
	if (trace)
		print_state(&b);
	teardown(&b);
	return 0;
}

/* --- a corpus that gets past DRIVER_OK on both transports ------------------------------- */

struct seed {
	uint8_t buf[4096];
	size_t len;
};

static void put_op(struct seed *s, enum kind k, uint8_t size, uint16_t off, uint32_t val)
{
	struct op o = {k, size, htole16(off), htole32(val)};

	memcpy(s->buf + s->len, &o, sizeof(o));
	s->len += sizeof(o);
}

static void put_mem(struct seed *s, uint16_t off, const void *p, uint8_t len)
{
	put_op(s, K_MEM, len, off, 0);
	memcpy(s->buf + s->len, p, len);
	s->len += len;
}

/* Register writes by transport: virtio-mmio offsets, or common configuration fields. */
static void reg(struct seed *s, bool pci, uint16_t mmio_off, uint16_t pci_off, uint8_t pci_len,
		uint32_t v)
{
	if (pci)
		put_op(s, K_WRITE, pci_len == 1 ? 0 : pci_len == 2 ? 1 : 2, pci_off, v);
	else
		put_op(s, K_WRITE, 2, mmio_off, v);
}

/* Where virtio_pci_init puts the MSI-X capability (found by building one). */
static uint8_t msix_cap;

/* Reset, features, queues 0..nq-1 (8 entries each, rings in RAM page q), DRIVER_OK. */
static void bring_up(struct seed *s, bool pci, unsigned nq, uint32_t feat_lo, uint32_t feat_hi)
{
	if (pci) {
		put_op(s, K_CFG_WRITE, 2, PCI_BASE_ADDRESS_0, 0x10000000);
		put_op(s, K_CFG_WRITE, 1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	}
	reg(s, pci, 0x070, 0x14, 1, 0);
	reg(s, pci, 0x070, 0x14, 1, 1 | 2);
	reg(s, pci, 0x024, 0x08, 4, 0);
	reg(s, pci, 0x020, 0x0c, 4, feat_lo);
	reg(s, pci, 0x024, 0x08, 4, 1);
	reg(s, pci, 0x020, 0x0c, 4, feat_hi);
	reg(s, pci, 0x070, 0x14, 1, 1 | 2 | 8);
	if (pci) {
		/* MSI-X on, every vector unmasked; the configuration change vector is 0. */
		put_op(s, K_CFG_WRITE, 1, msix_cap + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE);
		for (unsigned v = 0; v <= nq; v++)
			put_op(s, K_WRITE, 2, VPCI_MSIX_OFF + 16 * v + PCI_MSIX_ENTRY_VECTOR_CTRL,
			       0);
		reg(s, pci, 0, 0x10, 2, 0);
	}
	for (unsigned q = 0; q < nq; q++) {
		uint32_t base = (uint32_t)GPA + 0x1000 * q;

		reg(s, pci, 0x030, 0x16, 2, q);
		reg(s, pci, 0x038, 0x18, 2, 8);
		reg(s, pci, 0x080, 0x20, 4, base);
		reg(s, pci, 0x090, 0x28, 4, base + 0x100);
		reg(s, pci, 0x0a0, 0x30, 4, base + 0x200);
		if (pci) {
			reg(s, pci, 0, 0x24, 4, 0);
			reg(s, pci, 0, 0x2c, 4, 0);
			reg(s, pci, 0, 0x34, 4, 0);
			reg(s, pci, 0, 0x1a, 2, q + 1); /* MSI-X vector */
		}
		reg(s, pci, 0x044, 0x1c, 2, 1);
	}
	reg(s, pci, 0x070, 0x14, 1, 1 | 2 | 4 | 8);
}

/* A descriptor at table index i of queue q's table. */
static void desc(struct seed *s, unsigned q, unsigned i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	uint8_t d[16];

	addr = htole64(addr);
	len = htole32(len);
	flags = htole16(flags);
	next = htole16(next);
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	put_mem(s, (uint16_t)(0x1000 * q + 16 * i), d, 16);
}

/* Offer head on queue q as the driver's avail index idx. */
static void avail(struct seed *s, unsigned q, uint16_t slot, uint16_t head, uint16_t idx)
{
	uint16_t v[2] = {htole16(head), htole16(idx)};

	put_mem(s, (uint16_t)(0x1000 * q + 0x100 + 4 + 2 * slot), &v[0], 2);
	put_mem(s, (uint16_t)(0x1000 * q + 0x100 + 2), &v[1], 2);
}

static void notify(struct seed *s, bool pci, unsigned q)
{
	if (pci)
		put_op(s, K_WRITE, 1, VPCI_NOTIFY_OFF + VPCI_NOTIFY_MUL * q, q);
	else
		put_op(s, K_KICK, 0, 0, q);
}

static void save(const char *dir, const char *name, const struct seed *s)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f))
		fprintf(stderr, "fuzz_transport: cannot write %s\n", path);
}

/* The x86 ports: BAR 0 and the command register of 00:01.0 through CF8/CFC, reads back, the
 * ACPI sleep and reset registers and the i8042. */
static void pio_seed(const char *dir)
{
	struct seed s = {.len = 1, .buf = {T_BLK_URING | 0x80}};
	const uint32_t dev = 0x80000000u | 1u << 11;

	put_op(&s, K_PIO, 2 | 4, 0xcf8, dev | PCI_BASE_ADDRESS_0);
	put_op(&s, K_PIO, 2 | 4, 0xcfc, 0x10000000);
	put_op(&s, K_PIO, 2 | 4, 0xcf8, dev | PCI_COMMAND);
	put_op(&s, K_PIO, 1 | 4, 0xcfc, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	put_op(&s, K_PIO, 2, 0xcf8, 0);
	put_op(&s, K_PIO, 1, 0xcfe, 0);
	put_op(&s, K_PIO, 0 | 4, 0x64, 0x01);
	put_op(&s, K_PIO, 0 | 4, 0x600, 5 << 2 | 0x20);
	put_op(&s, K_PIO, 0 | 4, 0x602, 0x0f);
	save(dir, "seed-x86-ports", &s);
}

/* A packet the guest sends on queue 1 (slot/descriptor i): a vsock header and data. */
static void vsock_tx(struct seed *s, bool pci, unsigned i, uint32_t sport, uint32_t dport,
		     uint16_t op, const char *data)
{
	uint8_t pkt[64] = {0};
	uint32_t len = data ? (uint32_t)strlen(data) : 0;

	le64_put(pkt, 3);
	le64_put(pkt + 8, 2);
	le32_put(pkt + 16, sport);
	le32_put(pkt + 20, dport);
	le32_put(pkt + 24, len);
	le16_put(pkt + 28, 1);
	le16_put(pkt + 30, op);
	le32_put(pkt + 36, 65536);
	if (len)
		memcpy(pkt + 44, data, len);
	put_mem(s, (uint16_t)(0x6000 + 0x100 * i), pkt, (uint8_t)(44 + len));
	desc(s, 1, i, GPA + 0x6000 + 0x100 * i, 44 + len, 0, 0);
	avail(s, 1, (uint16_t)i, (uint16_t)i, (uint16_t)(i + 1));
	notify(s, pci, 1);
	put_op(s, K_WAIT, 0, 0, 0);
}

/* A host program connects, the guest accepts; data both ways; a guest connection to host
 * port 1000; the host closes. */
static void vsock_seed(struct seed *s, bool pci, bool pz, bool sn)
{
	static const char line[] = "CONNECT 1234\n";

	bring_up(s, pci, 3, 1u << 28 | 1u << 29, 1);
	for (unsigned i = 0; i < 4; i++) {
		desc(s, 0, i, GPA + 0x5000 + 0x200 * i, 0x200, 2, 0);
		avail(s, 0, (uint16_t)i, (uint16_t)i, (uint16_t)(i + 1));
	}
	notify(s, pci, 0);
	desc(s, 2, 0, GPA + 0x7000, 4, 2, 0);
	avail(s, 2, 0, 0, 1);
	notify(s, pci, 2);
	put_op(s, K_FRAME, sizeof(line) - 1, 0, 0);
	memcpy(s->buf + s->len, line, sizeof(line) - 1);
	s->len += sizeof(line) - 1;
	put_op(s, K_WAIT, 0, 0, 0);
	vsock_tx(s, pci, 0, 1234, 1u << 30, 2, NULL); /* RESPONSE */
	if (pz)
		put_op(s, K_PAUSE, 0, 0, 1);
	put_op(s, K_FRAME, 5, 0, 1);
	memcpy(s->buf + s->len, "hello", 5);
	s->len += 5;
	put_op(s, K_WAIT, 0, 0, 0);
	if (pz)
		put_op(s, K_PAUSE, 0, 0, 0);
	vsock_tx(s, pci, 1, 1234, 1u << 30, 5, "ping"); /* RW */
	put_op(s, K_DRAIN, 0, 0, 0);
	if (sn)
		put_op(s, K_SNAP, 0, 0, 0);
	vsock_tx(s, pci, 2, 555, 1000, 1, NULL); /* REQUEST */
	put_op(s, K_DRAIN, 0, 0, 0);
	put_op(s, K_FRAME, 0, 0, 2);
	put_op(s, K_WAIT, 0, 0, 0);
}

/*
 * The balloon with every queue: page numbers inflated (in RAM, and one outside) and
 * deflated, a statistics buffer held and returned by the timer, a range reported free, the
 * target changed; paused or snapshot in between when pz or sn.
 */
static void balloon_seed(struct seed *s, bool pci, bool pz, bool sn)
{
	uint32_t pfn[3] = {htole32((uint32_t)((GPA + 0xe000) >> 12)),
			   htole32((uint32_t)((GPA + 0xf000) >> 12)), htole32(0x10)};
	uint8_t st[20] = {4, 0, 1, 2, 3, 4, 0, 0, 0, 0, 5, 0, 9, 9, 9, 9, 0, 0, 0, 0};

	bring_up(s, pci, 4, 1u << 1 | 1u << 2 | 1u << 5 | 1u << 29, 1);
	put_mem(s, 0x8000, pfn, sizeof(pfn));
	desc(s, 0, 0, GPA + 0x8000, sizeof(pfn), 0, 0);
	avail(s, 0, 0, 0, 1);
	notify(s, pci, 0);
	desc(s, 1, 0, GPA + 0x8000, 4, 0, 0);
	avail(s, 1, 0, 0, 1);
	notify(s, pci, 1);
	put_mem(s, 0x8100, st, sizeof(st));
	desc(s, 2, 0, GPA + 0x8100, sizeof(st), 0, 0);
	avail(s, 2, 0, 0, 1);
	notify(s, pci, 2);
	put_op(s, K_WAIT, 0, 0, 0);
	if (pz)
		put_op(s, K_PAUSE, 0, 0, 1);
	if (sn)
		put_op(s, K_SNAP, 0, 0, 0);
	put_op(s, K_BALLOON, 0, 0, 1); /* the timer: paused, nothing returned */
	if (pz)
		put_op(s, K_PAUSE, 0, 0, 0);
	put_op(s, K_BALLOON, 0, 0, 64 << 1);
	desc(s, 3, 0, GPA + 0xc000, 0x4000, 2, 0);
	avail(s, 3, 0, 0, 1);
	notify(s, pci, 3);
	put_op(s, K_WAIT, 0, 0, 0);
	put_op(s, K_BALLOON, 0, 0, 1);
	put_op(s, K_POLL, 0, 0, 0);
}

static void write_seeds(const char *dir)
{
	struct bench b;

	pio_seed(dir);
	if (setup(&b, 0x80))
		msix_cap = b.vpci.msix_cap;
	teardown(&b);
	for (int pci = 0; pci < 8; pci++) {
		/* pci & 2: the same, paused while I/O is in flight, and resumed; pci & 4: a
		 * snapshot there instead, and one with a field changed at the end */
		bool pz = (pci & 6) == 2, sn = pci & 4;

		for (int t = 0; t < T_NTARGETS; t++) {
			struct seed s = {.len = 1};
			uint8_t hdr[16] = {0}, frame[60] = {0};
			char name[64];

			s.buf[0] = (uint8_t)(t | (pci & 1 ? 0x80 : 0));
			if (t == T_RNG) {
				/* Three buffers, more than the bucket holds: the timer serves
				 * the rest. */
				bring_up(&s, pci & 1, 1, 0, 1);
				desc(&s, 0, 0, GPA + 0x4000, 200, 2, 0);
				desc(&s, 0, 1, GPA + 0x4100, 100, 2, 0);
				desc(&s, 0, 2, GPA + 0x4200, 100, 3, 3);
				desc(&s, 0, 3, GPA + 0x4300, 56, 2, 0);
				avail(&s, 0, 0, 0, 1);
				avail(&s, 0, 1, 1, 2);
				avail(&s, 0, 2, 2, 3);
				notify(&s, pci & 1, 0);
				if (sn)
					put_op(&s, K_SNAP, 0, 0, 0);
				if (pz) {
					put_op(&s, K_PAUSE, 0, 0, 1);
					put_op(&s, K_WAIT, 0, 0, 0);
					put_op(&s, K_PAUSE, 0, 0, 0);
				}
				put_op(&s, K_WAIT, 0, 0, 0);
				put_op(&s, K_WAIT, 0, 0, 0);
			} else if (t == T_BALLOON) {
				balloon_seed(&s, pci & 1, pz, sn);
			} else if (t == T_VSOCK) {
				vsock_seed(&s, pci & 1, pz, sn);
			} else if (is_blk(t)) {
				/* A read of sector 3, a write of sector 4, a flush; reaped. */
				bring_up(&s, pci & 1, 1, 1u << 28 | 1u << 29, 1);
				hdr[0] = 0;
				hdr[8] = 3;
				put_mem(&s, 0x4000, hdr, 16);
				hdr[0] = 1;
				hdr[8] = 4;
				put_mem(&s, 0x4010, hdr, 16);
				hdr[0] = 4;
				hdr[8] = 0;
				put_mem(&s, 0x4020, hdr, 16);
				desc(&s, 0, 0, GPA + 0x4000, 16, 1, 1);
				desc(&s, 0, 1, GPA + 0x5000, 512, 1 | 2, 2);
				desc(&s, 0, 2, GPA + 0x6000, 1, 2, 0);
				desc(&s, 0, 3, GPA + 0x4010, 16, 1, 4);
				desc(&s, 0, 4, GPA + 0x5200, 512, 1, 5);
				desc(&s, 0, 5, GPA + 0x6001, 1, 2, 0);
				desc(&s, 0, 6, GPA + 0x4020, 16, 1, 7);
				desc(&s, 0, 7, GPA + 0x6002, 1, 2, 0);
				avail(&s, 0, 0, 0, 1);
				avail(&s, 0, 1, 3, 2);
				avail(&s, 0, 2, 6, 3);
				notify(&s, pci & 1, 0);
				if (sn)
					put_op(&s, K_SNAP, 0, 0, 0);
				if (pz) {
					put_op(&s, K_PAUSE, 0, 0, 1);
					put_op(&s, K_KICK, 0, 0, 0);
					put_op(&s, K_WAIT, 0, 0, 0);
					put_op(&s, K_PAUSE, 0, 0, 0);
				}
				put_op(&s, K_WAIT, 0, 0, 0); /* the kick */
				put_op(&s, K_WAIT, 0, 0, 0); /* the completions */
				put_op(&s, K_POLL, 0, 0, 0);
			} else {
				/* Receive buffers on queue 0, a frame in; a frame out on queue 1.
				 */
				bring_up(&s, pci & 1, 3,
					 1u << 5 | 1u << 15 | 1u << 16 | 1u << 17 | 1u << 22, 1);
				desc(&s, 0, 0, GPA + 0x5000, 2048, 2, 0);
				avail(&s, 0, 0, 0, 1);
				notify(&s, pci & 1, 0);
				if (pz)
					put_op(&s, K_PAUSE, 0, 0, 1);
				memset(frame + 12, 0xff, 6);
				put_op(&s, K_FRAME, 12 + 60, 0, 0);
				memcpy(s.buf + s.len, hdr, 12);
				memcpy(s.buf + s.len + 12, frame, 60);
				s.len += 72;
				put_op(&s, K_WAIT, 0, 0, 0);
				if (pz)
					put_op(&s, K_PAUSE, 0, 0, 0);
				if (sn)
					put_op(&s, K_SNAP, 0, 0, 0);
				put_mem(&s, 0x6000, frame, 60);
				desc(&s, 1, 0, GPA + 0x6000, 12 + 60, 0, 0);
				avail(&s, 1, 0, 0, 1);
				notify(&s, pci & 1, 1);
				put_op(&s, K_POLL, 0, 0, 0);
				put_op(&s, K_DRAIN, 0, 0, 0);
				/* vhost: the kernel asks for an interrupt, then reports a ring. */
				put_op(&s, K_VHOST, 0, 0, 2);
				put_op(&s, K_POLL, 0, 0, 0);
				put_op(&s, K_VHOST, 0, 0, 4);
				put_op(&s, K_POLL, 0, 0, 0);
			}
			if (sn)
				put_op(&s, K_SNAP_BAD, 1, 3, 0x1000);
			snprintf(name, sizeof(name), "seed-%s-%s%s",
				 t == T_NET	     ? "net"
				 : t == T_BALLOON    ? "balloon"
				 : t == T_VSOCK	     ? "vsock"
				 : t == T_NET_VHOST  ? "net-vhost"
				 : t == T_BLK_SYNC   ? "blk-sync"
				 : t == T_BLK_INLINE ? "blk-inline"
				 : t == T_RNG	     ? "rng"
						     : "blk-uring",
				 pci & 1 ? "pci" : "mmio",
				 pz   ? "-pause"
				 : sn ? "-snap"
				      : "");
			save(dir, name, &s);
			if (t == T_BLK_URING) {
				/* The same, its completions reaped by the event loop only. */
				s.buf[0] |= 0x40;
				snprintf(name, sizeof(name), "seed-blk-uring-deferred-%s%s",
					 pci & 1 ? "pci" : "mmio",
					 pz   ? "-pause"
					 : sn ? "-snap"
					      : "");
				save(dir, name, &s);
			}
		}
	}
}
