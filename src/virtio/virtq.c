/* virtq: split virtqueues walked over checked guest memory (virtio 1.x, little-endian). */
#include "virtio/virtq.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#define DESC_F_NEXT	     1
#define DESC_F_WRITE	     2
#define DESC_F_INDIRECT	     4
#define AVAIL_F_NO_INTERRUPT 1

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Ring field accessors: every shared field is read or written exactly once, little-endian. */
static uint16_t avail_flags(const struct virtq *q)
{
	return le16toh(((volatile uint16_t *)q->avail)[0]);
}

static uint16_t avail_idx(const struct virtq *q)
{
	return le16toh(__atomic_load_n(&((volatile uint16_t *)q->avail)[1], __ATOMIC_ACQUIRE));
}

static uint16_t avail_ring(const struct virtq *q, uint16_t i)
{
	return le16toh(((volatile uint16_t *)q->avail)[2 + i]);
}

static uint16_t used_event(const struct virtq *q)
{
	return avail_ring(q, q->num);
}

static void set_avail_event(struct virtq *q, uint16_t v)
{
	volatile uint8_t *used = q->used;

	*(volatile uint16_t *)(used + 4 + 8 * q->num) = htole16(v);
}

void virtq_reset(struct virtq *q)
{
	uint16_t max = q->num_max;
	uint32_t gen = q->gen + 1;
	uint64_t total = q->used_total;

	memset(q, 0, sizeof(*q));
	q->used_total = total;
	q->num_max = max;
	q->num = max;
	q->gen = gen;
}

void virtq_stop(struct virtq *q)
{
	q->ready = false;
	q->gen++;
}

/* The three rings: alignment, then bytes as a header plus so many per entry. */
static const struct {
	const char *name;
	uint64_t align, fixed, per_entry;
} rings[] = {{"desc", 16, 0, 16}, {"avail", 2, 6, 2}, {"used", 4, 6, 8}};

/* Host pointer of ring r of q, NULL when it is misaligned or not wholly in RAM. */
static void *ring_at(const struct virtq *q, const struct guest_mem *m, unsigned r)
{
	const uint64_t gpa[] = {q->desc_gpa, q->avail_gpa, q->used_gpa};

	if (gpa[r] % rings[r].align)
		return NULL;
	return gm_ptr(m, gpa[r], rings[r].fixed + rings[r].per_entry * q->num);
}

const char *virtq_layout_error(const struct virtq *q, const struct guest_mem *m)
{
	uint64_t n = q->num;

	if (!n || n > q->num_max || (n & (n - 1)))
		return "num";
	for (unsigned r = 0; r < 3; r++)
		if (!ring_at(q, m, r))
			return rings[r].name;
	return NULL;
}

int virtq_start(struct virtq *q, const struct guest_mem *m)
{
	if (virtq_layout_error(q, m))
		return -EINVAL;
	q->desc = ring_at(q, m, 0);
	q->avail = ring_at(q, m, 1);
	q->used = ring_at(q, m, 2);
	q->last_avail = 0;
	q->avail_seen = 0;
	q->used_idx = 0;
	q->signalled_valid = false;
	q->ready = true;
	q->gen++;
	return 0;
}

/* Copy one descriptor out of the table: the guest may change it under us. */
static void read_desc(const void *table, unsigned i, struct desc *d)
{
	const volatile struct desc *src = (const volatile struct desc *)table + i;

	d->addr = le64toh(src->addr);
	d->len = le32toh(src->len);
	d->flags = le16toh(src->flags);
	d->next = le16toh(src->next);
}

int virtq_pop(struct virtq *q, const struct guest_mem *m, struct virtq_chain *c)
{
	const void *table = q->desc;
	unsigned table_len = q->num, budget = q->num, idx;
	bool indirect = false;
	uint16_t avail;

	if (!q->ready)
		return 0;
	avail = avail_idx(q);
	if ((uint16_t)(avail - q->last_avail) > q->num)
		return -EINVAL; /* more buffers than the ring holds */
	q->avail_seen = avail;
	if (avail == q->last_avail)
		return 0;
	idx = avail_ring(q, q->last_avail % q->num);
	q->last_avail++;
	c->head = idx;
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	if (idx >= q->num)
		return -EINVAL;
	for (;;) {
		struct desc d;
		void *p;

		if (budget-- == 0)
			return -EINVAL; /* a loop, or a chain longer than its table */
		read_desc(table, idx, &d);
		if (d.flags & DESC_F_INDIRECT) {
			/*
			 * Only as the last descriptor of a direct chain (virtio 1.2 2.7.5.3.2:
			 * zero or more direct ones may come first), never nested.
			 */
			if (!q->indirect || indirect || (d.flags & DESC_F_NEXT))
				return -EINVAL;
			if (!d.len || d.len % sizeof(struct desc) ||
			    d.len / sizeof(struct desc) > VIRTQ_MAX_INDIRECT)
				return -EINVAL;
			table = gm_ptr(m, d.addr, d.len);
			if (!table)
				return -EINVAL;
			table_len = budget = d.len / sizeof(struct desc);
			idx = 0;
			indirect = true;
			continue;
		}
		p = gm_ptr(m, d.addr, d.len);
		if (!p)
			return -EINVAL; /* zero length, outside RAM, or wrapping */
		if (c->nout + c->nin >= c->iov_max)
			return -EINVAL;
		if (d.flags & DESC_F_WRITE) {
			if (d.len > UINT32_MAX - c->in_len)
				return -EINVAL;
			c->in_len += d.len;
			c->nin++;
		} else {
			if (c->nin || d.len > UINT32_MAX - c->out_len)
				return -EINVAL; /* readable after writable */
			c->out_len += d.len;
			c->nout++;
		}
		c->iov[c->nout + c->nin - 1] = (struct iovec){p, d.len};
		if (!(d.flags & DESC_F_NEXT))
			return 1;
		idx = d.next;
		if (idx >= table_len)
			return -EINVAL;
	}
}

void virtq_add_used(struct virtq *q, uint16_t head, uint32_t len)
{
	volatile uint8_t *used = q->used;
	volatile uint32_t *elem = (volatile uint32_t *)(used + 4 + 8 * (q->used_idx % q->num));

	elem[0] = htole32(head);
	elem[1] = htole32(len);
	q->used_idx++;
	q->used_total++;
}

void virtq_publish(struct virtq *q)
{
	volatile uint8_t *used = q->used;

	/* The elements must be visible before the index that publishes them. */
	__atomic_store_n((volatile uint16_t *)(used + 2), htole16(q->used_idx), __ATOMIC_RELEASE);
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	virtq_add_used(q, head, len);
	virtq_publish(q);
}

void virtq_unpop(struct virtq *q, unsigned n)
{
	q->last_avail -= n;
}

bool virtq_should_notify(struct virtq *q)
{
	uint16_t old, event;
	bool valid;

	/* Order the used->idx store before reading the driver's suppression fields. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!q->event_idx)
		return !(avail_flags(q) & AVAIL_F_NO_INTERRUPT);
	old = q->signalled_used;
	valid = q->signalled_valid;
	q->signalled_used = q->used_idx;
	q->signalled_valid = true;
	if (!valid)
		return true;
	event = used_event(q);
	/* vring_need_event: did used_idx step past event since the last notification? */
	return (uint16_t)(q->used_idx - event - 1) < (uint16_t)(q->used_idx - old);
}

bool virtq_enable_notify(struct virtq *q)
{
	if (!q->ready)
		return false;
	/*
	 * The driver kicks when its avail->idx steps past avail_event. Waiting on last_avail
	 * would be wrong after virtq_unpop(): the driver has already passed that index and
	 * would never kick again for the chains the device gave back.
	 */
	if (q->event_idx)
		set_avail_event(q, q->avail_seen);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return avail_idx(q) != q->avail_seen;
}
