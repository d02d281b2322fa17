/* vdrv: a small virtio driver over the virtio-mmio registers, for device tests (no KVM). */
#include "vdrv.h"

#include <stdlib.h>
#include <string.h>

#include "virtio/virtio.h"

static void count_interrupt(struct virtio_dev *vd, int vq)
{
	struct vdrv *d = (struct vdrv *)((char *)vd->transport - offsetof(struct vdrv, t));

	(void)vq;
	d->interrupts++;
}

static const struct virtio_transport_ops vdrv_tops = {.interrupt = count_interrupt};

void vdrv_init(struct vdrv *d, size_t size)
{
	memset(d, 0, sizeof(*d));
	d->ram = aligned_alloc(4096, size);
	memset(d->ram, 0, size);
	d->mem = (struct guest_mem){.hva = d->ram, .gpa = VDRV_GPA, .size = size};
	d->heap = VDRV_GPA;
	d->t.irqfd = -1;
	loop_init(&d->loop);
}

void vdrv_attach(struct vdrv *d, struct virtio_dev *vd)
{
	d->vd = vd;
	d->t.vd = vd;
	vd->transport = &d->t;
	vd->tops = &vdrv_tops;
	virtio_kicks_open(vd, &d->loop);
}

void vdrv_detach(struct vdrv *d)
{
	if (d->vd)
		virtio_kicks_close(d->vd, &d->loop);
	d->vd = NULL;
}

void vdrv_free(struct vdrv *d)
{
	if (d->vd)
		abort(); /* the device may still write into RAM: detach and stop it first */
	loop_free(&d->loop);
	free(d->ram);
	d->ram = NULL;
}

uint32_t vdrv_rd(struct vdrv *d, uint64_t off)
{
	uint32_t v = 0;

	virtio_mmio_access(&d->t, off, (uint8_t *)&v, 4, false);
	return v;
}

void vdrv_wr(struct vdrv *d, uint64_t off, uint32_t v)
{
	virtio_mmio_access(&d->t, off, (uint8_t *)&v, 4, true);
}

uint64_t vdrv_alloc(struct vdrv *d, size_t len, size_t align)
{
	uint64_t a = (d->heap + align - 1) & ~(uint64_t)(align - 1);

	d->heap = a + len;
	if (d->heap > d->mem.gpa + d->mem.size)
		abort(); /* the test asked for more RAM than it set up */
	memset(vdrv_ptr(d, a), 0, len);
	return a;
}

void *vdrv_ptr(struct vdrv *d, uint64_t gpa)
{
	return d->ram + (gpa - d->mem.gpa);
}

uint32_t vdrv_start(struct vdrv *d, uint64_t features, unsigned nq, uint16_t num)
{
	features |= 1ull << VIRTIO_F_VERSION_1;
	vdrv_wr(d, 0x070, 0);
	vdrv_wr(d, 0x070, VIRTIO_STATUS_ACKNOWLEDGE);
	vdrv_wr(d, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	for (unsigned sel = 0; sel < 2; sel++) {
		vdrv_wr(d, 0x024, sel);
		vdrv_wr(d, 0x020, (uint32_t)(features >> (32 * sel)));
	}
	vdrv_wr(d, 0x070, 1 | 2 | VIRTIO_STATUS_FEATURES_OK);
	d->indirect = features & (1ull << VIRTIO_F_INDIRECT_DESC);
	for (unsigned q = 0; q < nq && q < VDRV_QUEUES; q++) {
		struct vdrv_queue *vq = &d->q[q];

		*vq = (struct vdrv_queue){.num = num};
		vq->desc = vdrv_alloc(d, 16u * num, 4096);
		vq->avail = vdrv_alloc(d, 6 + 2u * num, 4096);
		vq->used = q == 0 && d->used_at ? d->used_at : vdrv_alloc(d, 6 + 8u * num, 4096);
		vdrv_wr(d, 0x030, q);
		vdrv_wr(d, 0x038, num);
		vdrv_wr(d, 0x080, (uint32_t)vq->desc);
		vdrv_wr(d, 0x084, (uint32_t)(vq->desc >> 32));
		vdrv_wr(d, 0x090, (uint32_t)vq->avail);
		vdrv_wr(d, 0x094, (uint32_t)(vq->avail >> 32));
		vdrv_wr(d, 0x0a0, (uint32_t)vq->used);
		vdrv_wr(d, 0x0a4, (uint32_t)(vq->used >> 32));
		vdrv_wr(d, 0x044, 1);
	}
	vdrv_wr(d, 0x070, 1 | 2 | 8 | VIRTIO_STATUS_DRIVER_OK);
	return vdrv_rd(d, 0x070);
}

static void put_desc(uint8_t *at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	memcpy(at, &addr, 8);
	memcpy(at + 8, &len, 4);
	memcpy(at + 12, &flags, 2);
	memcpy(at + 14, &next, 2);
}

uint16_t vdrv_chain(struct vdrv *d, unsigned q, const struct vdrv_buf *b, unsigned n)
{
	struct vdrv_queue *vq = &d->q[q];
	uint16_t head = vq->next_desc;

	if (d->indirect) {
		uint64_t table = vdrv_alloc(d, 16u * n, 16);

		for (unsigned i = 0; i < n; i++)
			put_desc(vdrv_ptr(d, table + 16 * i), b[i].gpa, b[i].len,
				 (i + 1 < n ? 1 : 0) | (b[i].writable ? 2 : 0), i + 1);
		put_desc(vdrv_ptr(d, vq->desc + 16u * head), table, 16 * n, 4, 0);
		vq->next_desc = (head + 1) % vq->num;
		return head;
	}
	for (unsigned i = 0; i < n; i++) {
		uint16_t at = (head + i) % vq->num;

		put_desc(vdrv_ptr(d, vq->desc + 16u * at), b[i].gpa, b[i].len,
			 (i + 1 < n ? 1 : 0) | (b[i].writable ? 2 : 0), (at + 1) % vq->num);
	}
	vq->next_desc = (head + n) % vq->num;
	return head;
}

void vdrv_post(struct vdrv *d, unsigned q, uint16_t head)
{
	struct vdrv_queue *vq = &d->q[q];
	uint16_t *avail = vdrv_ptr(d, vq->avail);

	avail[2 + vq->next_avail % vq->num] = head;
	__atomic_store_n(&avail[1], ++vq->next_avail, __ATOMIC_RELEASE);
}

void vdrv_kick(struct vdrv *d, unsigned q)
{
	vdrv_wr(d, 0x050, q);
}

uint16_t vdrv_used(struct vdrv *d, unsigned q)
{
	uint16_t *used = vdrv_ptr(d, d->q[q].used);

	return __atomic_load_n(&used[1], __ATOMIC_ACQUIRE);
}

bool vdrv_wait_used(struct vdrv *d, unsigned q, uint16_t want)
{
	return VDRV_WAIT(d, vdrv_used(d, q) == want);
}
