/* Unit tests: virtio-blk request parsing, and the device driven over virtio-mmio. */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>

#include "backends/blkio.h"
#include "machine.h"
#include "test.h"
#include "vdrv.h"
#include "virtio/blk.h"
#include "virtio/virtio.h"

#define SECTOR_BYTES 512
#define DISK_SECTORS 4096 /* a 2 MiB image */

struct hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

static void parse(void)
{
	struct hdr h = {htole32(1), 0, htole64(77)};
	uint8_t data[1024], data2[512], status[4], split[16];
	struct iovec iov[4];
	struct virtq_chain c = {.iov = iov, .iov_max = 4};
	struct blk_request r;

	/* OUT: header, data, status. */
	iov[0] = (struct iovec){&h, 16};
	iov[1] = (struct iovec){data, 1024};
	iov[2] = (struct iovec){status, 1};
	c.nout = 2;
	c.nin = 1;
	c.out_len = 1040;
	c.in_len = 1;
	CHECK(blk_parse(&c, &r) == 0);
	CHECK_EQ(r.type, 1);
	CHECK_EQ(r.sector, 77);
	CHECK(r.status == status);
	CHECK(r.ndata == 1 && r.data[0].iov_base == data && r.data_len == 1024);

	/* IN with the status sharing the last writable buffer, header split in two. */
	memcpy(split, &h, 16);
	split[0] = 0; /* type IN */
	iov[0] = (struct iovec){split, 10};
	iov[1] = (struct iovec){split + 10, 6};
	iov[2] = (struct iovec){data2, 512};
	iov[3] = (struct iovec){data, 513};
	c.nout = 2;
	c.nin = 2;
	c.out_len = 16;
	c.in_len = 1025;
	CHECK(blk_parse(&c, &r) == 0);
	CHECK_EQ(r.type, 0);
	CHECK_EQ(r.sector, 77);
	CHECK(r.status == data + 512);
	CHECK(r.ndata == 2 && r.data_len == 1024 && r.data[1].iov_len == 512);

	/* OUT whose data shares the header's buffer. */
	memcpy(data, &h, 16);
	iov[0] = (struct iovec){data, 16 + 512};
	iov[1] = (struct iovec){status, 1};
	c.nout = 1;
	c.nin = 1;
	c.out_len = 528;
	c.in_len = 1;
	CHECK(blk_parse(&c, &r) == 0);
	CHECK(r.ndata == 1 && r.data[0].iov_base == data + 16 && r.data_len == 512);

	/* FLUSH: header and status only. */
	h.type = htole32(4);
	iov[0] = (struct iovec){&h, 16};
	iov[1] = (struct iovec){status, 1};
	c.out_len = 16;
	CHECK(blk_parse(&c, &r) == 0);
	CHECK(r.type == 4 && r.data_len == 0);

	/* No status byte, or a short header: not a request. */
	c.nin = 0;
	c.in_len = 0;
	c.out_len = 16;
	CHECK_EQ(blk_parse(&c, &r), -EINVAL);
	iov[0] = (struct iovec){&h, 8};
	iov[1] = (struct iovec){status, 1};
	c.nout = 1;
	c.nin = 1;
	c.out_len = 8;
	c.in_len = 1;
	CHECK_EQ(blk_parse(&c, &r), -EINVAL);
}

/* --- the device, driven through virtio-mmio registers with a real engine --------------- */

struct disk {
	struct machine m;
	struct device *dev;
	struct virtio_dev *vd;
	struct vdrv d;
	char path[64];
	int fd;
};

/* Every 512-byte sector of the image holds its own number, 64 times. */
static void fill_sector(uint64_t sector, uint8_t *p)
{
	for (int i = 0; i < 64; i++)
		memcpy(p + 8 * i, &sector, 8);
}

static bool disk_open(struct disk *k, const char *dir, const char *engine, const char *cache,
		      unsigned qsize, size_t ram)
{
	char sets[5][96];
	char *setp[5];
	uint8_t sec[SECTOR_BYTES];

	memset(k, 0, sizeof(*k));
	snprintf(k->path, sizeof(k->path), "%s/mvblk-XXXXXX", dir);
	k->fd = mkstemp(k->path);
	if (k->fd < 0)
		return false;
	for (uint64_t s = 0; s < DISK_SECTORS; s++) {
		fill_sector(s, sec);
		if (pwrite(k->fd, sec, sizeof(sec), s * SECTOR_BYTES) != sizeof(sec))
			return false;
	}
	snprintf(sets[0], sizeof(sets[0]), "blk0.type=virtio-blk");
	snprintf(sets[1], sizeof(sets[1]), "blk0.path=%s", k->path);
	snprintf(sets[2], sizeof(sets[2]), "blk0.engine=%s", engine);
	snprintf(sets[3], sizeof(sets[3]), "blk0.cache=%s", cache);
	snprintf(sets[4], sizeof(sets[4]), "blk0.queue_size=%u", qsize);
	for (int i = 0; i < 5; i++)
		setp[i] = sets[i];
	if (machine_load(&k->m, "machines/rpi5.ini", setp, 5, true))
		return false;
	for (size_t i = 0; i < k->m.ndevices; i++)
		if (!strcmp(k->m.devices[i].name, "blk0"))
			k->dev = &k->m.devices[i];
	vdrv_init(&k->d, ram);
	if (!k->dev || blk_start(k->dev, &k->d.mem, &k->d.loop, &k->vd))
		return false;
	vdrv_attach(&k->d, k->vd);
	return true;
}

/* As the product tears down: kicks unwatched, the device stopped, then guest RAM freed. */
static void disk_close(struct disk *k)
{
	vdrv_detach(&k->d);
	if (k->dev)
		blk_stop(k->dev);
	vdrv_free(&k->d);
	machine_free(&k->m);
	close(k->fd);
	unlink(k->path);
}

struct req {
	uint64_t hdr, data, status;
};

/* Post one request of type with len bytes of data at guest address data. */
static uint16_t post_req_at(struct disk *k, unsigned q, uint32_t type, uint64_t sector,
			    uint32_t len, struct req *r, uint64_t data)
{
	struct hdr h = {htole32(type), 0, htole64(sector)};
	struct vdrv_buf b[3];
	unsigned n = 0;
	uint16_t head;

	r->hdr = vdrv_alloc(&k->d, sizeof(h), 16);
	memcpy(vdrv_ptr(&k->d, r->hdr), &h, sizeof(h));
	r->data = data;
	r->status = vdrv_alloc(&k->d, 1, 1);
	*(uint8_t *)vdrv_ptr(&k->d, r->status) = 0xee;
	b[n++] = (struct vdrv_buf){r->hdr, sizeof(h), false};
	if (len)
		b[n++] = (struct vdrv_buf){r->data, len, type == VIRTIO_BLK_T_IN};
	b[n++] = (struct vdrv_buf){r->status, 1, true};
	head = vdrv_chain(&k->d, q, b, n);
	vdrv_post(&k->d, q, head);
	return head;
}

/* The same with a buffer of its own, data_align bytes past a page boundary. */
static uint16_t post_req(struct disk *k, unsigned q, uint32_t type, uint64_t sector, uint32_t len,
			 struct req *r, size_t data_align)
{
	uint64_t data = vdrv_alloc(&k->d, len + data_align, 4096) + data_align;

	return post_req_at(k, q, type, sector, len, r, data);
}

static uint8_t status_of(struct disk *k, const struct req *r)
{
	return *(uint8_t *)vdrv_ptr(&k->d, r->status);
}

static bool holds_sector(struct disk *k, uint64_t gpa, uint64_t sector)
{
	uint8_t want[SECTOR_BYTES];

	fill_sector(sector, want);
	return !memcmp(vdrv_ptr(&k->d, gpa), want, sizeof(want));
}

#define FEAT_INDIRECT (1ull << VIRTIO_F_INDIRECT_DESC)

/*
 * A driver may keep as many requests in flight as its queue has entries (Linux does with
 * indirect descriptors): a full ring posted with one kick must complete, not end in
 * DEVICE_NEEDS_RESET; and a ring bigger than the device's budget per wake-up is finished
 * through rescheduling.
 */
static void full_ring(const char *engine, unsigned num)
{
	struct disk k;
	struct req *r = calloc(2 * num, sizeof(*r));
	unsigned bad = 0;

	CHECK(disk_open(&k, "/tmp", engine, "writeback", num, 8u << 20));
	CHECK_EQ(vdrv_start(&k.d, FEAT_INDIRECT, 1, num), 15);
	for (unsigned i = 0; i < num; i++)
		post_req(&k, 0, VIRTIO_BLK_T_IN, i, SECTOR_BYTES, &r[i], 0);
	vdrv_kick(&k.d, 0);
	vdrv_kick(&k.d, 0); /* again, with every slot in flight */
	CHECK(vdrv_wait_used(&k.d, 0, num));
	CHECK_EQ(vdrv_rd(&k.d, 0x070) & VIRTIO_STATUS_NEEDS_RESET, 0);
	/* The ring wraps: the same again. */
	for (unsigned i = num; i < 2 * num; i++)
		post_req(&k, 0, VIRTIO_BLK_T_IN, i % DISK_SECTORS, SECTOR_BYTES, &r[i], 0);
	vdrv_kick(&k.d, 0);
	CHECK(vdrv_wait_used(&k.d, 0, 2 * num));
	CHECK_EQ(vdrv_rd(&k.d, 0x070), 15);
	for (unsigned i = 0; i < 2 * num; i++)
		bad += status_of(&k, &r[i]) != VIRTIO_BLK_S_OK ||
		       !holds_sector(&k, r[i].data, i % DISK_SECTORS);
	CHECK_EQ(bad, 0);
	disk_close(&k);
	free(r);
}

/*
 * The driver stops a queue while a read is in flight, then rewrites its size (0xffff) and
 * used ring. The 4-entry used ring sits at the very end of RAM, and the late completion's
 * entry would land 6 entries in: nothing may be pushed (ASan sees a write past RAM), and
 * the slot must come back.
 */
static void layout_change_in_flight(const char *engine)
{
	struct disk k;
	struct req r[8];

	CHECK(disk_open(&k, "/tmp", engine, "writeback", 8, 1u << 20));
	blk_defer_completions(k.dev, true);	    /* io_uring: not reaped while submitted */
	k.d.used_at = VDRV_GPA + k.d.mem.size - 40; /* 6 + 8 * 4 bytes, the end of RAM */
	CHECK_EQ(vdrv_start(&k.d, FEAT_INDIRECT, 1, 4), 15);
	for (unsigned i = 0; i < 6; i++) {
		post_req(&k, 0, VIRTIO_BLK_T_IN, i, SECTOR_BYTES, &r[i], 0);
		if (i == 3 || i == 5) {
			vdrv_kick(&k.d, 0);
			CHECK(vdrv_wait_used(&k.d, 0, i + 1));
		}
	}
	post_req(&k, 0, VIRTIO_BLK_T_IN, 6, SECTOR_BYTES, &r[6], 0);
	vdrv_kick(&k.d, 0); /* submitted; its completion is not reaped yet */
	vdrv_wr(&k.d, 0x044, 0);
	vdrv_wr(&k.d, 0x038, 0xffff);
	vdrv_wr(&k.d, 0x0a0, (uint32_t)(VDRV_GPA + k.d.mem.size - 8));
	CHECK_EQ(vdrv_rd(&k.d, 0x038), 4); /* frozen from DRIVER_OK */
	CHECK_EQ(vdrv_rd(&k.d, 0x0a0), (uint32_t)k.d.used_at);
	/* The late completion is reaped by the event loop: wait for it, not for time. */
	CHECK(VDRV_WAIT(&k.d, blk_inflight(k.dev) == 0));
	CHECK_EQ(vdrv_used(&k.d, 0), 6); /* nothing pushed to the stopped queue */
	CHECK_EQ(vdrv_rd(&k.d, 0x070) & VIRTIO_STATUS_NEEDS_RESET, 0);
	/* Every slot is free again: a fresh start runs a full ring. */
	k.d.used_at = 0;
	CHECK_EQ(vdrv_start(&k.d, FEAT_INDIRECT, 1, 8), 15);
	for (unsigned i = 0; i < 8; i++)
		post_req(&k, 0, VIRTIO_BLK_T_IN, i, SECTOR_BYTES, &r[i], 0);
	vdrv_kick(&k.d, 0);
	CHECK(vdrv_wait_used(&k.d, 0, 8));
	CHECK(status_of(&k, &r[7]) == VIRTIO_BLK_S_OK && holds_sector(&k, r[7].data, 7));
	disk_close(&k);
}

/* Open a disk with 16 reads of 64 KiB in flight on r, not reaped until the event loop runs. */
static void reads_in_flight(struct disk *k, const char *engine, struct req *r)
{
	CHECK(disk_open(k, "/tmp", engine, "writeback", 16, 2u << 20));
	blk_defer_completions(k->dev, true);
	CHECK_EQ(vdrv_start(&k->d, FEAT_INDIRECT, 1, 16), 15);
	for (unsigned i = 0; i < 16; i++)
		post_req(k, 0, VIRTIO_BLK_T_IN, 128 * i, 64 * 1024, &r[i], 0);
	vdrv_kick(&k->d, 0);
	CHECK(blk_inflight(k->dev) > 0);
}

/* A reset while requests are in flight: they finish, and nothing reaches the old rings. */
static void reset_in_flight(const char *engine)
{
	struct disk k;
	struct req r[16];

	reads_in_flight(&k, engine, r);
	vdrv_wr(&k.d, 0x070, 0);
	CHECK_EQ(vdrv_rd(&k.d, 0x070), 0);
	/* The reset returned once everything in flight had finished. */
	CHECK_EQ(blk_inflight(k.dev), 0);
	loop_poll(&k.d.loop, 0); /* the completions' wake-up, if any: nothing to push */
	CHECK_EQ(vdrv_used(&k.d, 0), 0);
	disk_close(&k);
}

/*
 * The disk closed with reads in flight (a guest killed mid-I/O): the device stops, its
 * engine finishing them, before the guest RAM they are read into is freed (ASan sees the
 * sync engine's worker write into freed RAM otherwise).
 */
static void close_in_flight(const char *engine)
{
	struct disk k;
	struct req r[16];

	reads_in_flight(&k, engine, r);
	disk_close(&k);
}

/* Kick queue q through its eventfd (the ioeventfd path) and let the event loop take it. */
static void kick_eventfd(struct disk *k, unsigned q)
{
	uint64_t one = 1;

	CHECK(write(k->vd->kicks[q].fd, &one, sizeof(one)) == sizeof(one));
	for (int i = 0; i < 3; i++)
		loop_poll(&k->d.loop, 10);
}

/*
 * vm_pause's part of a disk: reads in flight (not reaped yet) finish within the pause, their
 * used entries and interrupt written before it returns; while paused, kicks (trapped or
 * through the eventfd) take nothing and guest RAM does not change; the resume serves them.
 */
static void pause_in_flight(const char *engine)
{
	struct disk k;
	struct req r[18];
	uint8_t *ram;
	unsigned bad = 0, irqs;

	if (strcmp(engine, "inline")) {
		reads_in_flight(&k, engine, r);
	} else {
		/* inline requests finish in their kick: nothing is in flight at a pause */
		CHECK(disk_open(&k, "/tmp", engine, "writeback", 16, 2u << 20));
		CHECK_EQ(vdrv_start(&k.d, FEAT_INDIRECT, 1, 16), 15);
		for (unsigned i = 0; i < 16; i++)
			post_req(&k, 0, VIRTIO_BLK_T_IN, 128 * i, 64 * 1024, &r[i], 0);
		vdrv_kick(&k.d, 0);
	}
	irqs = k.d.interrupts;
	CHECK_EQ(k.dev->ops->pause(k.dev), 0);
	CHECK_EQ(blk_inflight(k.dev), 0);
	CHECK_EQ(vdrv_used(&k.d, 0), 16);
	CHECK(k.d.interrupts > irqs || !strcmp(engine, "inline"));
	for (unsigned i = 0; i < 16; i++)
		bad += status_of(&k, &r[i]) != VIRTIO_BLK_S_OK ||
		       !holds_sector(&k, r[i].data, 128 * i);
	CHECK_EQ(bad, 0);
	/* Paused twice: still paused, nothing to do. */
	CHECK_EQ(k.dev->ops->pause(k.dev), 0);
	post_req(&k, 0, VIRTIO_BLK_T_IN, 5, SECTOR_BYTES, &r[16], 0);
	post_req(&k, 0, VIRTIO_BLK_T_IN, 6, SECTOR_BYTES, &r[17], 0);
	ram = malloc(k.d.mem.size);
	memcpy(ram, k.d.ram, k.d.mem.size);
	vdrv_kick(&k.d, 0);
	kick_eventfd(&k, 0);
	CHECK_EQ(blk_inflight(k.dev), 0);
	CHECK(!memcmp(ram, k.d.ram, k.d.mem.size)); /* the device wrote nothing */
	free(ram);
	/* The resume looks at the queue: both requests are served with no new kick. */
	k.dev->ops->resume(k.dev);
	CHECK(vdrv_wait_used(&k.d, 0, 18));
	CHECK(status_of(&k, &r[16]) == VIRTIO_BLK_S_OK && holds_sector(&k, r[16].data, 5));
	CHECK(status_of(&k, &r[17]) == VIRTIO_BLK_S_OK && holds_sector(&k, r[17].data, 6));
	/* And kicks are served again. */
	post_req(&k, 0, VIRTIO_BLK_T_IN, 7, SECTOR_BYTES, &r[0], 0);
	kick_eventfd(&k, 0);
	CHECK(vdrv_wait_used(&k.d, 0, 19));
	disk_close(&k);
}

/* One-range discard and write zeroes requests, their flags, and the fallocate fallback. */
static uint8_t zero_req(struct disk *k, uint32_t type, uint64_t sector, uint32_t count,
			uint32_t flags, uint16_t want_used)
{
	struct virtio_blk_discard_write_zeroes seg = {htole64(sector), htole32(count),
						      htole32(flags)};
	struct req r;

	post_req(k, 0, VIRTIO_BLK_T_OUT, 0, sizeof(seg), &r, 0);
	/* post_req built an OUT request: make it this type with the range as its data. */
	((struct hdr *)vdrv_ptr(&k->d, r.hdr))->type = htole32(type);
	memcpy(vdrv_ptr(&k->d, r.data), &seg, sizeof(seg));
	vdrv_kick(&k->d, 0);
	CHECK(vdrv_wait_used(&k->d, 0, want_used));
	return status_of(k, &r);
}

static void zeroes(const char *dir, const char *engine)
{
	uint8_t buf[SECTOR_BYTES], zero[SECTOR_BYTES] = {0};
	struct disk k;

	CHECK(disk_open(&k, dir, engine, "writeback", 16, 1u << 20));
	CHECK_EQ(vdrv_start(&k.d,
			    FEAT_INDIRECT | 1ull << VIRTIO_BLK_F_DISCARD |
				    1ull << VIRTIO_BLK_F_WRITE_ZEROES,
			    1, 16),
		 15);
	/* Without UNMAP: ZERO_RANGE, or (tmpfs has none) a punched hole, which reads zero. */
	CHECK_EQ(zero_req(&k, VIRTIO_BLK_T_WRITE_ZEROES, 8, 8, 0, 1), VIRTIO_BLK_S_OK);
	CHECK(pread(k.fd, buf, sizeof(buf), 8 * SECTOR_BYTES) == sizeof(buf) &&
	      !memcmp(buf, zero, sizeof(buf)));
	CHECK(pread(k.fd, buf, sizeof(buf), 16 * SECTOR_BYTES) == sizeof(buf) &&
	      !memcmp(buf + 8, buf, 8)); /* the next sector is untouched */
	CHECK_EQ(zero_req(&k, VIRTIO_BLK_T_WRITE_ZEROES, 16, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
			  2),
		 VIRTIO_BLK_S_OK);
	CHECK(pread(k.fd, buf, sizeof(buf), 23 * SECTOR_BYTES) == sizeof(buf) &&
	      !memcmp(buf, zero, sizeof(buf)));
	/* Flags the device does not know: unsupported, not an I/O error. */
	CHECK_EQ(zero_req(&k, VIRTIO_BLK_T_WRITE_ZEROES, 24, 8, 2, 3), VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(zero_req(&k, VIRTIO_BLK_T_DISCARD, 24, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, 4),
		 VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(zero_req(&k, VIRTIO_BLK_T_DISCARD, 24, 8, 0, 5), VIRTIO_BLK_S_OK);
	CHECK_EQ(zero_req(&k, VIRTIO_BLK_T_DISCARD, DISK_SECTORS - 4, 8, 0, 6),
		 VIRTIO_BLK_S_IOERR); /* past the end */
	CHECK_EQ(vdrv_rd(&k.d, 0x070), 15);
	disk_close(&k);
}

/* cache = direct: the host's alignment is the guest's block size; odd buffers are bounced. */
static void direct(void)
{
	struct virtio_blk_config cfg;
	struct disk k;
	struct req r[3];
	uint32_t bs;

	CHECK(disk_open(&k, "/tmp", "io_uring", "direct", 16, 2u << 20));
	CHECK_EQ(vdrv_start(&k.d, FEAT_INDIRECT, 1, 16), 15);
	virtio_config_access(k.vd, 0, (uint8_t *)&cfg, sizeof(cfg), false);
	bs = le32toh(cfg.blk_size);
	CHECK(bs >= 512 && !(bs & (bs - 1)));
	post_req(&k, 0, VIRTIO_BLK_T_IN, 0, bs, &r[0], 1); /* buffer at an odd address */
	post_req(&k, 0, VIRTIO_BLK_T_IN, bs / SECTOR_BYTES, bs, &r[1], 0);
	vdrv_kick(&k.d, 0);
	CHECK(vdrv_wait_used(&k.d, 0, 2));
	CHECK(status_of(&k, &r[0]) == VIRTIO_BLK_S_OK && holds_sector(&k, r[0].data, 0));
	CHECK(status_of(&k, &r[1]) == VIRTIO_BLK_S_OK &&
	      holds_sector(&k, r[1].data, bs / SECTOR_BYTES));
	if (bs > SECTOR_BYTES) {
		/* An offset that is not a whole block: an I/O error, not a host EINVAL. */
		post_req(&k, 0, VIRTIO_BLK_T_IN, 1, bs, &r[2], 0);
		vdrv_kick(&k.d, 0);
		CHECK(vdrv_wait_used(&k.d, 0, 3));
		CHECK_EQ(status_of(&k, &r[2]), VIRTIO_BLK_S_IOERR);
	}
	disk_close(&k);
}

/*
 * Misaligned reads need more bounce memory than an engine may hold (24 MiB against 16): the
 * rest wait for it, and all complete. They share one guest buffer.
 */
static void bounce_limit(const char *engine)
{
	enum { N = 24, LEN = 1 << 20 };
	struct req r[N];
	struct disk k;
	uint64_t buf;
	unsigned bad = 0;

	CHECK(disk_open(&k, "/tmp", engine, "direct", 32, 4u << 20));
	CHECK_EQ(vdrv_start(&k.d, FEAT_INDIRECT, 1, 32), 15);
	buf = vdrv_alloc(&k.d, LEN + 4096, 4096) + 1;
	for (unsigned i = 0; i < N; i++)
		post_req_at(&k, 0, VIRTIO_BLK_T_IN, 0, LEN, &r[i], buf);
	vdrv_kick(&k.d, 0);
	CHECK(vdrv_wait_used(&k.d, 0, N));
	for (unsigned i = 0; i < N; i++)
		bad += status_of(&k, &r[i]) != VIRTIO_BLK_S_OK;
	CHECK_EQ(bad, 0);
	CHECK(holds_sector(&k, buf, 0) && holds_sector(&k, buf + LEN - SECTOR_BYTES, 2047));
	disk_close(&k);
}

#define BIG_BYTES   (256u << 10)
#define BIG_SECTORS (BIG_BYTES / SECTOR_BYTES)

/*
 * Post n reads of 256 KiB (read i at the disk's (i % 8)th 256 KiB), kick once: the interrupts
 * that gave, with *bad counting a wrong status or data (first and last sector of each).
 */
static unsigned big_reads(struct disk *k, struct req *r, unsigned n, unsigned *bad)
{
	unsigned irqs = k->d.interrupts;

	for (unsigned i = 0; i < n; i++)
		post_req(k, 0, VIRTIO_BLK_T_IN, i % 8 * BIG_SECTORS, BIG_BYTES, &r[i], 0);
	vdrv_kick(&k->d, 0);
	irqs = k->d.interrupts - irqs;
	for (unsigned i = 0; i < n; i++)
		*bad += status_of(k, &r[i]) != VIRTIO_BLK_S_OK ||
			!holds_sector(k, r[i].data, i % 8 * BIG_SECTORS) ||
			!holds_sector(k, r[i].data + BIG_BYTES - SECTOR_BYTES,
				      (i % 8 + 1) * BIG_SECTORS - 1);
	return irqs;
}

/*
 * The inline engine serves and completes requests in the kick itself: no event loop pass.
 * Small ones complete together at the end of the kick, one interrupt for all; large ones
 * each as soon as copied (an interrupt each here, without event-index suppression), so a
 * driver can queue more while the rest are copied. At depth they complete in groups: while
 * four or more wait in the ring, what is done waits (up to 2 MiB). Sixteen 256 KiB reads in
 * one kick: the first eight go out together (2 MiB), the next four wait with the rest still
 * queued, and the last four, with fewer than four behind each, complete one by one: five
 * interrupts, not sixteen.
 */
static void inline_on_kick(void)
{
	struct disk k;
	struct req r[16];
	unsigned bad = 0, irqs;

	CHECK(disk_open(&k, "/tmp", "inline", "writeback", 16, 8u << 20));
	CHECK_EQ(vdrv_start(&k.d, FEAT_INDIRECT, 1, 16), 15);
	for (unsigned i = 0; i < 8; i++)
		post_req(&k, 0, VIRTIO_BLK_T_IN, i, SECTOR_BYTES, &r[i], 0);
	irqs = k.d.interrupts;
	vdrv_kick(&k.d, 0);
	CHECK_EQ(vdrv_used(&k.d, 0), 8);
	CHECK_EQ(k.d.interrupts - irqs, 1);
	for (unsigned i = 0; i < 8; i++)
		bad += status_of(&k, &r[i]) != VIRTIO_BLK_S_OK || !holds_sector(&k, r[i].data, i);
	CHECK_EQ(bad, 0);
	CHECK_EQ(big_reads(&k, r, 3, &bad), 3);
	CHECK_EQ(vdrv_used(&k.d, 0), 11);
	CHECK_EQ(bad, 0);
	CHECK_EQ(big_reads(&k, r, 16, &bad), 5);
	CHECK_EQ(vdrv_used(&k.d, 0), 27);
	CHECK_EQ(bad, 0);
	disk_close(&k);
}

static unsigned io_count;
static long io_res[2];

static void count_done(void *ctx, struct blkio_req *r, long res)
{
	(void)ctx;
	(void)r;
	io_res[io_count++ % 2] = res;
}

/*
 * The inline engine without inline reads (engine = auto on a block device): a write is done
 * when submitted and completes at the next poll, with no io_uring_enter. A read is tried
 * without waiting: a page-cache hit completes the same way, a miss (or a file that cannot be
 * tried) goes through the ring.
 */
static void inline_writes_only(void)
{
	char path[] = "/tmp/mvblkio-XXXXXX";
	int fd = mkstemp(path);
	uint8_t out[4096], in[4096];
	struct iovec wv = {out, sizeof(out)}, rv;
	struct blkio_req w = {
		.op = BLKIO_WRITE, .offset = 8192, .iov = &wv, .niov = 1, .len = 4096};
	struct blkio_req r;
	struct blkio b;
	ssize_t probe;

	CHECK(fd >= 0);
	unlink(path);
	CHECK_EQ(ftruncate(fd, 1 << 20), 0);
	CHECK_EQ(blkio_init(&b, BLKIO_INLINE, fd, 8, 0, count_done, NULL), 0);
	CHECK(b.inline_reads); /* the inline engine's own choice */
	CHECK(b.try_reads);
	b.inline_reads = false;
	memset(out, 0x5a, sizeof(out));
	io_count = 0;
	blkio_submit(&b, &w);
	blkio_kick(&b);
	blkio_poll(&b);
	CHECK_EQ(io_count, 1);
	CHECK(io_res[0] >= 0);
	CHECK_EQ(b.enters, 0);
	/* What this file system does with a read that must not wait (tmpfs: EOPNOTSUPP). */
	rv = (struct iovec){in, sizeof(in)};
	probe = preadv2(fd, &rv, 1, 8192, RWF_NOWAIT);
	CHECK(probe == (ssize_t)sizeof(in) || (probe < 0 && errno == EOPNOTSUPP));
	for (int pass = 0; pass < 2; pass++) {
		bool hit = probe > 0 && pass == 0;

		memset(in, 0, sizeof(in));
		rv = (struct iovec){in, sizeof(in)};
		r = (struct blkio_req){
			.op = BLKIO_READ, .offset = 8192, .iov = &rv, .niov = 1, .len = 4096};
		blkio_submit(&b, &r);
		blkio_kick(&b);
		CHECK_EQ(b.enters, (unsigned long)pass + (probe > 0 ? 0 : 1));
		CHECK_EQ(b.read_hits, probe > 0 ? 1ul : 0ul);
		CHECK_EQ(b.read_misses,
			 probe > 0 ? (unsigned long)pass : 1ul); /* then no more tries */
		CHECK_EQ(b.try_reads, probe > 0);
		if (hit) {
			blkio_poll(&b); /* no wake-up needed */
			CHECK_EQ(io_count, 2);
		}
		blkio_drain(&b);
		CHECK_EQ(io_count, 2 + pass);
		CHECK(io_res[(1 + pass) % 2] >= 0);
		CHECK(!memcmp(in, out, sizeof(in)));
		/* Out of the page cache: the next try misses and the ring waits for the disk. */
		CHECK_EQ(fdatasync(fd), 0);
		CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	}
	blkio_exit(&b);
	close(fd);
}

/* Write zeroes falls back to the other way of getting zeroes; a discard only punches. */
static void falloc_modes(void)
{
	struct blkio_req r = {.op = BLKIO_WRITE_ZEROES, .unmap = true};
	int punch = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE;
	int zero = FALLOC_FL_KEEP_SIZE | FALLOC_FL_ZERO_RANGE;

	CHECK_EQ(blkio_falloc_mode(&r), punch);
	r.retried = true;
	CHECK_EQ(blkio_falloc_mode(&r), zero);
	r = (struct blkio_req){.op = BLKIO_WRITE_ZEROES};
	CHECK_EQ(blkio_falloc_mode(&r), zero);
	r.retried = true;
	CHECK_EQ(blkio_falloc_mode(&r), punch);
	r = (struct blkio_req){.op = BLKIO_DISCARD, .retried = true};
	CHECK_EQ(blkio_falloc_mode(&r), punch);
}

/*
 * The sandbox's lists follow the engine: the inline engine's requests too large for it (and
 * its flushes) go through io_uring where the queue is served, so both allow io_uring_enter;
 * the sync engine's run on its worker, which neither needs.
 */
static void sandbox_flags(void)
{
	const struct {
		const char *engine;
		bool io_uring, inline_io;
	} want[] = {{"io_uring", true, false}, {"inline", true, true}, {"sync", false, false}};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct disk k;

		CHECK(disk_open(&k, "/tmp", want[i].engine, "writeback", 8, 1 << 20));
		CHECK_EQ(k.m.sandbox.io_uring, want[i].io_uring);
		CHECK_EQ(k.m.sandbox.inline_io, want[i].inline_io);
		disk_close(&k);
	}
}

void test_blk(void)
{
	test_case("sandbox_flags");
	sandbox_flags();
	test_case("parse");
	parse();
	test_case("falloc_modes");
	falloc_modes();
	for (int e = 0; e < 3; e++) {
		const char *engine = (const char *[]){"io_uring", "sync", "inline"}[e];

		test_case("full_ring %s 8", engine);
		full_ring(engine, 8);
		test_case("full_ring %s 256", engine);
		full_ring(engine, 256);
		if (e < 2) {
			/* inline requests are never in flight past their kick */
			test_case("layout_change_in_flight %s", engine);
			layout_change_in_flight(engine);
			test_case("reset_in_flight %s", engine);
			reset_in_flight(engine);
			test_case("close_in_flight %s", engine);
			close_in_flight(engine);
		}
		test_case("pause_in_flight %s", engine);
		pause_in_flight(engine);
		test_case("zeroes %s /tmp", engine);
		zeroes("/tmp", engine);
		if (access("/dev/shm", W_OK) == 0) {
			test_case("zeroes %s /dev/shm", engine);
			zeroes("/dev/shm", engine); /* tmpfs: no ZERO_RANGE, the fallback works */
		}
		test_case("bounce_limit %s", engine);
		bounce_limit(engine);
	}
	test_case("inline_on_kick");
	inline_on_kick();
	test_case("inline_writes_only");
	inline_writes_only();
	test_case("direct");
	direct();
}
