/*
 * poke: what the misbehaving test drivers (vnetpoke, blkpoke) share. They run as root in a
 * test guest and drive a virtio-mmio device directly: registers through /dev/mem, rings and
 * buffers in locked pages whose guest-physical addresses come from /proc/self/pagemap (the
 * kernel's driver unbound first).
 */
#ifndef MICROVM_POKE_H
#define MICROVM_POKE_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct vq {
	unsigned sel, num;
	struct desc *desc; /* one page each: descriptors, avail ring, used ring */
	volatile uint16_t *avail, *used;
	uint16_t next_avail;
};

static volatile uint32_t *regs;
static uint8_t *scratch; /* locked pages */
static uint64_t *phys;

/* Guest-physical address of scratch + off (pages are not contiguous). */
static uint64_t pa(unsigned off)
{
	return phys[off / PAGE] + off % PAGE;
}

static int lock_scratch(unsigned pages)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);

	phys = calloc(pages, sizeof(*phys));
	scratch = mmap(NULL, (size_t)pages * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fd < 0 || !phys || scratch == MAP_FAILED || mlock(scratch, (size_t)pages * PAGE) < 0)
		return -1;
	memset(scratch, 0, (size_t)pages * PAGE);
	for (unsigned i = 0; i < pages; i++) {
		uint64_t e;

		if (pread(fd, &e, 8, (off_t)(((uintptr_t)scratch / PAGE + i) * 8)) != 8 ||
		    !(e >> 63) || !(e & ((1ull << 55) - 1)))
			return -1;
		phys[i] = (e & ((1ull << 55) - 1)) * PAGE;
	}
	close(fd);
	return 0;
}

static uint32_t rd(unsigned off)
{
	return regs[off / 4];
}

static void wr(unsigned off, uint32_t v)
{
	regs[off / 4] = v;
	__sync_synchronize();
}

/* Map the register page at base and check it is a virtio-mmio v2 device of type id. */
static int open_regs(const char *tool, uint64_t base, uint32_t id)
{
	int fd = open("/dev/mem", O_RDWR | O_SYNC);

	if (fd < 0) {
		fprintf(stderr, "%s: /dev/mem: %m\n", tool);
		return -1;
	}
	regs = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)base);
	if (regs == MAP_FAILED) {
		fprintf(stderr, "%s: mmap: %m\n", tool);
		return -1;
	}
	if (rd(0x000) != 0x74726976 || rd(0x004) != 2 || rd(0x008) != id) {
		fprintf(stderr, "%s: no virtio-mmio v2 device of type %u at 0x%llx\n", tool, id,
			(unsigned long long)base);
		return -1;
	}
	return 0;
}

/* Reset and negotiate features (bits 0-31) with VERSION_1. 0, or -1 if refused. */
static int negotiate(uint32_t features)
{
	wr(0x070, 0);
	wr(0x070, 1 | 2);
	wr(0x024, 0);
	wr(0x020, features);
	wr(0x024, 1);
	wr(0x020, 1); /* VERSION_1 */
	wr(0x070, 1 | 2 | 8);
	return rd(0x070) & 8 ? 0 : -1;
}

/* Lay queue sel out in three pages from page on (descriptors, avail, used) and enable it. */
static void setup_vq(struct vq *q, unsigned sel, unsigned num, unsigned page)
{
	uint64_t d = pa(page * PAGE), a = pa((page + 1) * PAGE), u = pa((page + 2) * PAGE);

	memset(scratch + page * PAGE, 0, 3 * PAGE);
	q->sel = sel;
	q->num = num;
	q->next_avail = 0;
	q->desc = (struct desc *)(scratch + page * PAGE);
	q->avail = (volatile uint16_t *)(scratch + (page + 1) * PAGE);
	q->used = (volatile uint16_t *)(scratch + (page + 2) * PAGE);
	wr(0x030, sel);
	wr(0x038, num);
	wr(0x080, (uint32_t)d);
	wr(0x084, (uint32_t)(d >> 32));
	wr(0x090, (uint32_t)a);
	wr(0x094, (uint32_t)(a >> 32));
	wr(0x0a0, (uint32_t)u);
	wr(0x0a4, (uint32_t)(u >> 32));
	wr(0x044, 1);
}

/* Make descriptor head (a chain through next fields already set) available. */
static void post(struct vq *q, uint16_t head)
{
	q->avail[2 + q->next_avail % q->num] = head;
	__sync_synchronize();
	q->avail[1] = ++q->next_avail;
	__sync_synchronize();
}

/* Wait up to 3 s for the device to return n chains in total. */
static int wait_used(struct vq *q, uint16_t n)
{
	for (int i = 0; i < 300; i++) {
		if ((uint16_t)q->used[1] == n)
			return 0;
		usleep(10000);
	}
	return -1;
}

#endif
