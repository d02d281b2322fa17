/*
 * blkpoke: a deliberately misbehaving virtio-blk driver, run as root inside a test guest on
 * a virtio-mmio disk whose kernel driver was unbound (see poke.h). It writes only sectors
 * 0-255 of the disk, so the host can check that nothing else changed. In turn it:
 *   - posts a full ring of 256 writes, then 256 reads, each with one kick (they must all
 *     complete: a driver may keep its whole ring in flight), and checks the data;
 *   - stops the queue (QueueReady = 0) with reads in flight and rewrites its size and
 *     rings: the layout stays frozen and nothing lands in the new "rings";
 *   - enables a queue after DRIVER_OK (the device must need a reset), toggles QueueReady
 *     with requests in flight, and posts a buffer outside guest RAM (needs a reset);
 *   - loads a register pair with one ldp, an access KVM cannot decode: the monitor must
 *     hand the guest an external abort (SIGBUS here) and keep running.
 * Prints KEY=VALUE lines for the test script.
 *   blkpoke MMIO_BASE
 */
#include <signal.h>
#include <sys/wait.h>

#include "poke.h"

#define NUM	      256
#define SECTOR	      512
#define PAGES	      (3 + 3 + NUM / 8 + NUM / 8 + 16 + 64)
#define FEAT_INDIRECT (1u << 28)

/* Page layout of the scratch area. */
#define P_RING	 0			   /* the queue's three pages */
#define P_ALT	 3			   /* three pages the driver "moves" the rings to */
#define P_TABLES 6			   /* NUM indirect tables of 3 descriptors, 64 bytes each */
#define P_HDRS	 (P_TABLES + NUM / 64 + 1) /* NUM headers of 16 bytes and statuses */
#define P_DATA	 (P_HDRS + 3)		   /* NUM sectors of data */
#define P_BIG	 (P_DATA + NUM / 8)	   /* 16 pages the in-flight reads land in */

static struct vq q;
static const char *volatile phase = "start";

/* A crash of the tool itself says where it was (a monitor bug would show up as one too). */
static void crashed(int sig, siginfo_t *si, void *ctx)
{
	char buf[160];
	int n;

	(void)ctx;
	n = snprintf(buf, sizeof(buf), "BLKPOKE-CRASH signal %d at %p in %s\n", sig, si->si_addr,
		     phase);
	if (write(1, buf, n) < 0)
		_exit(3);
	_exit(3);
}

static uint8_t *status_of(unsigned i)
{
	return scratch + P_HDRS * PAGE + 2 * PAGE + i;
}

/* Request i: type (0 read, 1 write) of len bytes at gpa data for sector, via a table. */
static void request(unsigned i, uint32_t type, uint64_t sector, uint64_t data, uint32_t len)
{
	unsigned t = P_TABLES * PAGE + i * 64, h = P_HDRS * PAGE + i * 16;
	struct desc *table = (struct desc *)(scratch + t);

	memcpy(scratch + h, &type, 4);
	memset(scratch + h + 4, 0, 4);
	memcpy(scratch + h + 8, &sector, 8);
	*status_of(i) = 0xee;
	table[0] = (struct desc){pa(h), 16, 1, 1};
	table[1] = (struct desc){data, len, (uint16_t)(1 | (type == 0 ? 2 : 0)), 2};
	table[2] = (struct desc){pa(P_HDRS * PAGE + 2 * PAGE + i), 1, 2, 0};
	q.desc[i % q.num] = (struct desc){pa(t), 48, 4, 0};
	post(&q, (uint16_t)(i % q.num));
}

static void fill(uint8_t *p, uint64_t sector)
{
	for (int i = 0; i < SECTOR / 8; i++)
		memcpy(p + 8 * i, &sector, 8);
}

static uint8_t *sector_buf(unsigned i)
{
	return scratch + P_DATA * PAGE + i * SECTOR;
}

/* Bring the device up with one queue of num entries at page. */
static int start(unsigned num, unsigned page)
{
	if (negotiate(FEAT_INDIRECT) < 0)
		return -1;
	setup_vq(&q, 0, num, page);
	wr(0x070, 1 | 2 | 4 | 8);
	return 0;
}

static int wait_needs_reset(void)
{
	for (int i = 0; i < 300 && !(rd(0x070) & 0x40); i++)
		usleep(10000);
	return (rd(0x070) & 0x40) ? 1 : 0;
}

/* A full ring of one type, one kick: how many came back, and how many went wrong. */
static void full_ring(uint32_t type, const char *name)
{
	uint16_t before = q.used[1];
	unsigned bad = 0;

	for (unsigned i = 0; i < NUM; i++) {
		if (type == 1)
			fill(sector_buf(i), i);
		else
			memset(sector_buf(i), 0, SECTOR);
		request(i, type, i, pa(P_DATA * PAGE + i * SECTOR), SECTOR);
	}
	wr(0x050, 0);
	wait_used(&q, (uint16_t)(before + NUM));
	for (unsigned i = 0; i < NUM; i++) {
		uint8_t want[SECTOR];

		fill(want, i);
		bad += *status_of(i) != 0 || (type == 0 && memcmp(sector_buf(i), want, SECTOR));
	}
	printf("%s=%u BAD=%u NEEDS-RESET=%u\n", name, (unsigned)(uint16_t)(q.used[1] - before), bad,
	       (rd(0x070) & 0x40) ? 1 : 0);
}

/*
 * Post n reads of a page each into the 16 pages from P_BIG on, and kick. (A buffer is one
 * page: the locked pages are not contiguous in guest-physical memory.)
 */
static void reads_in_flight(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		request(i, 0, (i * 8) % 256, pa((P_BIG + i % 16) * PAGE), PAGE);
	wr(0x050, 0);
}

/* The driver "moves" the stopped queue: nothing may be written to the pages it named. */
static void layout_change(void)
{
	uint64_t d = pa(P_ALT * PAGE), u = pa((P_ALT + 2) * PAGE);
	unsigned changed = 0;

	phase = "layout change: start";
	start(64, P_RING);
	memset(scratch + P_ALT * PAGE, 0xa5, 3 * PAGE);
	phase = "layout change: reads";
	reads_in_flight(64);
	phase = "layout change: rewrite";
	wr(0x030, 0);
	wr(0x044, 0);
	wr(0x038, 0xffff);
	wr(0x080, (uint32_t)d);
	wr(0x084, (uint32_t)(d >> 32));
	wr(0x0a0, (uint32_t)u);
	wr(0x0a4, (uint32_t)(u >> 32));
	printf("LAYOUT-NUM=%u READY=%u\n", rd(0x038), rd(0x044));
	usleep(500000);
	for (unsigned i = 0; i < 3 * PAGE; i++)
		changed += scratch[P_ALT * PAGE + i] != 0xa5;
	printf("LAYOUT-ALT-CHANGED=%u\n", changed);
	/* Enabling it again after DRIVER_OK is not allowed without a queue reset feature. */
	wr(0x044, 1);
	printf("REENABLE-NEEDS-RESET=%d\n", wait_needs_reset());
	wr(0x070, 0);
	printf("RESET-STATUS=%u\n", rd(0x070));
}

static void toggle_ready(void)
{
	start(64, P_RING);
	reads_in_flight(64);
	for (int i = 0; i < 100; i++)
		wr(0x044, i & 1);
	usleep(200000);
	wr(0x070, 0);
	printf("TOGGLE-RESET-STATUS=%u\n", rd(0x070));
}

static void outside_ram(void)
{
	start(64, P_RING);
	request(0, 0, 0, 0x1000, SECTOR); /* data below RAM */
	wr(0x050, 0);
	printf("OUTSIDE-NEEDS-RESET=%d\n", wait_needs_reset());
	wr(0x070, 0);
}

/* ldp of two registers: a data abort without a valid syndrome, for KVM to pass on. */
static void no_syndrome(void)
{
	int st = 0;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		uint64_t a, b;

		__asm__ volatile("ldp %0, %1, [%2]" : "=r"(a), "=r"(b) : "r"(regs) : "memory");
		printf("NISV-LOADED=%llx\n", (unsigned long long)(a ^ b));
		_exit(0);
	}
	waitpid(pid, &st, 0);
	printf("NISV=%s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS ? "SIGBUS"
			    : WIFSIGNALED(st)			      ? "other-signal"
								      : "survived");
	printf("NISV-AFTER-MAGIC=%x\n", rd(0x000));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: blkpoke MMIO_BASE\n");
		return 2;
	}
	struct sigaction sa = {.sa_sigaction = crashed, .sa_flags = SA_SIGINFO};

	sigaction(SIGSEGV, &sa, NULL);
	if (lock_scratch(PAGES) < 0) {
		perror("blkpoke: locked pages with known addresses");
		return 1;
	}
	if (open_regs("blkpoke", strtoull(argv[1], NULL, 0), 2) < 0)
		return 1;
	if (start(NUM, P_RING) < 0) {
		fprintf(stderr, "blkpoke: FEATURES_OK refused\n");
		return 1;
	}
	phase = "full ring of writes";
	full_ring(1, "FULL-WRITE");
	phase = "full ring of reads";
	full_ring(0, "FULL-READ");
	phase = "layout change";
	layout_change();
	phase = "QueueReady toggling";
	toggle_ready();
	phase = "buffer outside RAM";
	outside_ram();
	phase = "ldp";
	no_syndrome();
	wr(0x070, 0);
	printf("BLKPOKE-DONE\n");
	return 0;
}
