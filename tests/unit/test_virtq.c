/* Unit tests: the split-virtqueue walker over a fake guest memory, used ring, event index. */
#include <errno.h>
#include <stdlib.h>

#include "test.h"
#include "virtio/virtq.h"

#define GPA  0x40000000ull
#define SIZE (1u << 20)
#define DESC (GPA + 0x1000)
#define AVL  (GPA + 0x2000)
#define USED (GPA + 0x3000)
#define NUM  8

static uint8_t *ram;
static struct guest_mem mem;

static void *at(uint64_t gpa)
{
	return ram + (gpa - GPA);
}

static void desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	uint8_t *d = at(table + 16 * i);

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static void offer(uint16_t slot, uint16_t head, uint16_t idx)
{
	uint16_t *avail = at(AVL);

	avail[2 + slot % NUM] = head;
	avail[1] = idx;
}

static void setup(struct virtq *q, bool indirect, bool event_idx)
{
	memset(ram, 0, SIZE);
	memset(q, 0, sizeof(*q));
	q->num_max = 256;
	virtq_reset(q);
	q->num = NUM;
	q->desc_gpa = DESC;
	q->avail_gpa = AVL;
	q->used_gpa = USED;
	q->indirect = indirect;
	q->event_idx = event_idx;
	CHECK(virtq_start(q, &mem) == 0);
}

static int pop1(struct virtq *q, struct virtq_chain *c, struct iovec *iov, unsigned max)
{
	c->iov = iov;
	c->iov_max = max;
	return virtq_pop(q, &mem, c);
}

static void valid_chains(void)
{
	struct virtq q;
	struct virtq_chain c;
	struct iovec iov[16];

	setup(&q, true, false);
	CHECK_EQ(pop1(&q, &c, iov, 16), 0); /* empty */
	desc(DESC, 3, GPA + 0x10000, 16, 1, 5);
	desc(DESC, 5, GPA + 0x11000, 512, 1 | 2, 7);
	desc(DESC, 7, GPA + 0x12000, 1, 2, 0);
	offer(0, 3, 1);
	CHECK_EQ(pop1(&q, &c, iov, 16), 1);
	CHECK_EQ(c.head, 3);
	CHECK(c.nout == 1 && c.nin == 2);
	CHECK(c.out_len == 16 && c.in_len == 513);
	CHECK(iov[0].iov_base == at(GPA + 0x10000) && iov[2].iov_len == 1);
	CHECK_EQ(pop1(&q, &c, iov, 16), 0);

	/* Indirect: one direct descriptor pointing at a table of three. */
	desc(GPA + 0x20000, 0, GPA + 0x10000, 16, 1, 1);
	desc(GPA + 0x20000, 1, GPA + 0x11000, 4096, 1 | 2, 2);
	desc(GPA + 0x20000, 2, GPA + 0x12000, 1, 2, 0);
	desc(DESC, 0, GPA + 0x20000, 48, 4, 0);
	offer(1, 0, 2);
	CHECK_EQ(pop1(&q, &c, iov, 16), 1);
	CHECK(c.nout == 1 && c.nin == 2 && c.in_len == 4097);

	/*
	 * Direct descriptors, then an indirect table as the last one: legal (virtio 1.2
	 * 2.7.5.3.2), the segments follow in order; the table's write flag is ignored.
	 */
	desc(GPA + 0x21000, 0, GPA + 0x11000, 512, 1 | 2, 1);
	desc(GPA + 0x21000, 1, GPA + 0x12000, 1, 2, 0);
	desc(DESC, 4, GPA + 0x10000, 16, 1, 6);
	desc(DESC, 6, GPA + 0x21000, 32, 4 | 2, 0);
	offer(2, 4, 3);
	CHECK_EQ(pop1(&q, &c, iov, 16), 1);
	CHECK_EQ(c.head, 4);
	CHECK(c.nout == 1 && c.nin == 2 && c.out_len == 16 && c.in_len == 513);
	CHECK(iov[0].iov_base == at(GPA + 0x10000) && iov[1].iov_base == at(GPA + 0x11000));

	/* Used ring: element then index. */
	virtq_push(&q, 3, 513);
	virtq_push(&q, 0, 4097);
	virtq_push(&q, 4, 513);
	CHECK_EQ(((uint16_t *)at(USED))[1], 3);
	CHECK_EQ(((uint32_t *)at(USED + 4))[0], 3);
	CHECK_EQ(((uint32_t *)at(USED + 4))[1], 513);
	CHECK_EQ(((uint32_t *)at(USED + 12))[0], 0);
}

/* Offer a single chain starting at head 0 and expect the walker to refuse it. */
static void refuse(const char *what, bool indirect, void (*build)(void))
{
	struct virtq q;
	struct virtq_chain c;
	struct iovec iov[16];

	setup(&q, indirect, false);
	build();
	offer(0, 0, 1);
	test_current = what;
	CHECK_EQ(pop1(&q, &c, iov, 16), -EINVAL);
	test_current = "virtq";
}

static void b_loop(void)
{
	desc(DESC, 0, GPA + 0x10000, 16, 1, 1);
	desc(DESC, 1, GPA + 0x10000, 16, 1, 0);
}

static void b_next_range(void)
{
	desc(DESC, 0, GPA + 0x10000, 16, 1, NUM);
}

static void b_outside(void)
{
	desc(DESC, 0, GPA + SIZE - 8, 16, 0, 0);
}

static void b_below(void)
{
	desc(DESC, 0, GPA - 0x1000, 16, 0, 0);
}

static void b_wrap(void)
{
	desc(DESC, 0, 0xfffffffffffffff0ull, 0x20, 0, 0);
}

static void b_zero(void)
{
	desc(DESC, 0, GPA + 0x10000, 0, 0, 0);
}

static void b_direction(void)
{
	desc(DESC, 0, GPA + 0x10000, 16, 1 | 2, 1);
	desc(DESC, 1, GPA + 0x11000, 16, 0, 0);
}

static void b_nested(void)
{
	desc(GPA + 0x20000, 0, GPA + 0x21000, 16, 4, 0);
	desc(DESC, 0, GPA + 0x20000, 16, 4, 0);
}

static void b_indirect_next(void)
{
	desc(GPA + 0x20000, 0, GPA + 0x10000, 16, 0, 0);
	desc(DESC, 0, GPA + 0x20000, 16, 4 | 1, 1);
	desc(DESC, 1, GPA + 0x10000, 16, 0, 0);
}

static void b_indirect_len(void)
{
	desc(DESC, 0, GPA + 0x20000, 24, 4, 0);
}

static void b_indirect_loop(void)
{
	desc(GPA + 0x20000, 0, GPA + 0x10000, 16, 1, 1);
	desc(GPA + 0x20000, 1, GPA + 0x10000, 16, 1, 0);
	desc(DESC, 0, GPA + 0x20000, 32, 4, 0);
}

static void b_indirect_outside(void)
{
	desc(DESC, 0, GPA + SIZE - 16, 32, 4, 0);
}

/* A direct writable buffer, then an indirect table whose buffer is readable. */
static void b_indirect_direction(void)
{
	desc(GPA + 0x20000, 0, GPA + 0x10000, 16, 0, 0);
	desc(DESC, 0, GPA + 0x11000, 16, 1 | 2, 1);
	desc(DESC, 1, GPA + 0x20000, 16, 4, 0);
}

static void b_too_many(void)
{
	for (unsigned i = 0; i < NUM - 1; i++)
		desc(DESC, i, GPA + 0x10000 + i * 16, 16, 1, i + 1);
	desc(DESC, NUM - 1, GPA + 0x10000, 16, 0, 0);
}

static void b_nothing(void)
{
	desc(DESC, 0, GPA + 0x10000, 16, 0, 0);
}

static void malformed(void)
{
	struct virtq q;
	struct virtq_chain c;
	struct iovec iov[4];

	refuse("virtq loop", false, b_loop);
	refuse("virtq next out of range", false, b_next_range);
	refuse("virtq buffer past RAM", false, b_outside);
	refuse("virtq buffer below RAM", false, b_below);
	refuse("virtq buffer wraps", false, b_wrap);
	refuse("virtq zero length", false, b_zero);
	refuse("virtq readable after writable", false, b_direction);
	refuse("virtq nested indirect", true, b_nested);
	refuse("virtq indirect with next", true, b_indirect_next);
	refuse("virtq indirect bad length", true, b_indirect_len);
	refuse("virtq indirect loop", true, b_indirect_loop);
	refuse("virtq indirect table outside RAM", true, b_indirect_outside);
	refuse("virtq readable after writable across an indirect table", true,
	       b_indirect_direction);
	refuse("virtq indirect not negotiated", false, b_indirect_len);

	/* More segments than the caller can hold. */
	setup(&q, false, false);
	b_too_many();
	offer(0, 0, 1);
	CHECK_EQ(pop1(&q, &c, iov, 4), -EINVAL);

	/* Head index out of range, and an avail index that runs ahead by more than the ring. */
	setup(&q, false, false);
	b_nothing();
	offer(0, NUM, 1);
	CHECK_EQ(pop1(&q, &c, iov, 4), -EINVAL);
	setup(&q, false, false);
	b_nothing();
	offer(0, 0, NUM + 1);
	CHECK_EQ(pop1(&q, &c, iov, 4), -EINVAL);
}

static void start_checks(void)
{
	struct virtq q = {.num_max = 256};
	uint32_t gen;

	virtq_reset(&q);
	q.num = 6; /* not a power of two */
	q.desc_gpa = DESC;
	q.avail_gpa = AVL;
	q.used_gpa = USED;
	CHECK_EQ(virtq_start(&q, &mem), -EINVAL);
	q.num = 512; /* above num_max */
	CHECK_EQ(virtq_start(&q, &mem), -EINVAL);
	q.num = 8;
	q.desc_gpa = DESC + 8; /* misaligned */
	CHECK_EQ(virtq_start(&q, &mem), -EINVAL);
	q.desc_gpa = DESC;
	q.used_gpa = GPA + SIZE - 16; /* ring runs past RAM */
	CHECK_EQ(virtq_start(&q, &mem), -EINVAL);
	CHECK(!q.ready);
	q.used_gpa = USED;
	gen = q.gen;
	CHECK_EQ(virtq_start(&q, &mem), 0);
	CHECK(q.ready);
	/* Every start, stop and reset is a new generation. */
	CHECK(q.gen != gen);
	gen = q.gen;
	virtq_stop(&q);
	CHECK(!q.ready && q.gen != gen);
	gen = q.gen;
	virtq_reset(&q);
	CHECK(!q.ready && q.gen != gen && q.num_max == 256);
}

static void notify_suppression(void)
{
	struct virtq q;
	struct virtq_chain c;
	struct iovec iov[4];
	uint16_t *avail;

	/* Without EVENT_IDX: the driver's NO_INTERRUPT flag. */
	setup(&q, false, false);
	avail = at(AVL);
	virtq_push(&q, 0, 1);
	CHECK(virtq_should_notify(&q));
	avail[0] = 1;
	CHECK(!virtq_should_notify(&q));

	/* With EVENT_IDX: interrupt only when used_idx steps past used_event. */
	setup(&q, false, true);
	avail = at(AVL);
	avail[2 + NUM] = 5; /* used_event */
	virtq_push(&q, 0, 1);
	CHECK(virtq_should_notify(&q)); /* the first decision always notifies */
	virtq_push(&q, 0, 1);
	CHECK(!virtq_should_notify(&q)); /* used_idx 2, event 5 */
	for (int i = 0; i < 3; i++)
		virtq_push(&q, 0, 1);
	CHECK(!virtq_should_notify(&q)); /* used_idx 5: event 5 not yet passed */
	virtq_push(&q, 0, 1);
	CHECK(virtq_should_notify(&q)); /* used_idx 6 passed event 5 */

	/* enable_notify publishes avail_event and reports buffers that raced in. */
	CHECK(!virtq_enable_notify(&q));
	CHECK_EQ(*(uint16_t *)at(USED + 4 + 8 * NUM), 0);
	b_nothing();
	offer(0, 0, 1);
	CHECK(virtq_enable_notify(&q));

	/*
	 * A device that pops chains and gives them back (a frame larger than the buffers so
	 * far) must wait for buffers past them: avail_event 1, not the given-back index 0,
	 * else the driver, already past 0, never kicks.
	 */
	CHECK_EQ(pop1(&q, &c, iov, 4), 1);
	virtq_unpop(&q, 1);
	CHECK(!virtq_enable_notify(&q));
	CHECK_EQ(*(uint16_t *)at(USED + 4 + 8 * NUM), 1);
	offer(1, 0, 2);
	CHECK(virtq_enable_notify(&q));
	CHECK_EQ(pop1(&q, &c, iov, 4), 1); /* the given-back chain comes first */
	CHECK_EQ(q.last_avail, 1);
}

static void iov_copy(void)
{
	uint8_t a[3] = {0}, b[5] = {0}, out[8];
	struct iovec iov[2] = {{a, 3}, {b, 5}};

	CHECK_EQ(iov_from_buf(iov, 2, 2, "wxyz", 4), 4);
	CHECK(a[2] == 'w' && b[0] == 'x' && b[2] == 'z');
	CHECK_EQ(iov_to_buf(iov, 2, 2, out, 8), 6);
	CHECK(out[0] == 'w' && out[3] == 'z');
	CHECK_EQ(iov_to_buf(iov, 2, 9, out, 8), 0);
}

void test_virtq(void)
{
	ram = aligned_alloc(4096, SIZE);
	mem = (struct guest_mem){.hva = ram, .gpa = GPA, .size = SIZE};
	valid_chains();
	malformed();
	start_checks();
	notify_suppression();
	iov_copy();
	free(ram);
}
