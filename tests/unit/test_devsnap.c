/*
 * Unit tests: device state in snapshots. A device brought up by vdrv (virtio-mmio, or
 * virtio-pci with MSI-X or INTx) is paused and saved; a second one, built the same way, gets
 * the guest's RAM and the saved state: the guest sees the same registers and its queues go
 * on. A state that is wrong in one field is refused, naming it, and leaves the device as it
 * was built. The boot timer's counter (the UART's state: test_uart.c).
 */
#include <endian.h>
#include <linux/pci_regs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arch.h"
#include "devices/boottimer.h"
#include "kvm_arch.h"
#include "log.h"
#include "machine.h"
#include "snapshot/snapfile.h"
#include "snapshot/snapshot.h"
#include "tapwrap.h"
#include "test.h"
#include "vdrv.h"
#include "virtio/adapter.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/net_frame.h"

#define NF(bit)	 (1ull << VIRTIO_NET_F_##bit)
#define RAM	 (1u << 20)
#define QSIZE	 64
#define VIEW_MAX 8192

/* One machine with one device (blk0 or net0), driven by vdrv. */
struct side {
	struct machine m;
	struct device *dev;
	struct virtio_dev *vd;
	struct vdrv d;
	int fds[2], peer[2];
	bool net, started;
};

/* What a side is built from: the device, its transport, its settings. */
struct setup {
	bool net, pci, intx, vhost;
	const char *image;
	const char *set; /* a NIC's further key ("net0.mac=..."), or NULL */
};

static struct device *find_dev(struct machine *m, const char *name)
{
	for (size_t i = 0; i < m->ndevices; i++)
		if (!strcmp(m->devices[i].name, name))
			return &m->devices[i];
	return NULL;
}

/* The machine of a setup: rpi5 with blk0 (an image) or net0 (two queue pairs). */
static bool load(struct side *s, const struct setup *u)
{
	char path[96];
	char *blk[] = {"blk0.type=virtio-blk", path, "blk0.engine=sync", "blk0.queue_size=64",
		       u->pci ? "blk0.transport=pci" : "blk0.transport=mmio"};
	char *net[] = {"machine.vcpus=2",
		       "net0.type=virtio-net",
		       "net0.tap=mvsnap%d",
		       "net0.queues=2",
		       "net0.queue_size=64",
		       u->pci ? "net0.transport=pci" : "net0.transport=mmio",
		       u->vhost ? "net0.vhost=on" : "net0.vhost=off",
		       (char *)u->set};

	snprintf(path, sizeof(path), "blk0.path=%s", u->image);
	if (u->net)
		return machine_load(&s->m, "machines/rpi5.ini", net, u->set ? 8 : 7, true) == 0;
	return machine_load(&s->m, "machines/rpi5.ini", blk, 5, true) == 0;
}

/* Build a side: the device started over vdrv's RAM, on the setup's transport. */
static bool side_open(struct side *s, const struct setup *u)
{
	memset(s, 0, sizeof(*s));
	s->fds[0] = s->fds[1] = s->peer[0] = s->peer[1] = -1;
	s->net = u->net;
	if (!load(s, u))
		return false;
	s->dev = find_dev(&s->m, u->net ? "net0" : "blk0");
	vdrv_init(&s->d, RAM);
	s->d.intx = u->intx;
	for (int i = 0; u->net && i < 2; i++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
			return false;
		s->fds[i] = sv[0];
		s->peer[i] = sv[1];
	}
	if (!s->dev || (u->net ? net_start(s->dev, s->fds, &s->d.mem, &s->d.loop, &s->vd)
			       : blk_start(s->dev, &s->d.mem, &s->d.loop, &s->vd)))
		return false;
	s->started = true;
	if (u->pci)
		vdrv_attach_pci(&s->d, s->vd, &((struct virtio_adapter *)s->dev->priv)->tr.pci,
				&s->m);
	else
		vdrv_attach(&s->d, s->vd);
	return true;
}

static void side_close(struct side *s)
{
	vdrv_detach(&s->d);
	if (s->started && s->net)
		net_stop(s->dev);
	else if (s->started)
		blk_stop(s->dev);
	vdrv_free(&s->d);
	machine_free(&s->m);
	for (int i = 0; i < 2; i++) {
		if (s->fds[i] >= 0)
			close(s->fds[i]);
		if (s->peer[i] >= 0)
			close(s->peer[i]);
	}
}

/* --- the guest's view of a device: every register it can read ------------------------------ */

struct view {
	uint8_t b[VIEW_MAX];
	size_t n;
};

static void view_put(struct view *v, uint64_t x, unsigned len)
{
	if (v->n + len <= VIEW_MAX) {
		memcpy(v->b + v->n, &x, len);
		v->n += len;
	}
}

/* virtio-mmio: the registers for the selected queue, then for each queue, config space. */
static void view_mmio(struct vdrv *d, struct view *v)
{
	uint32_t sel = d->t.queue_sel; /* write-only for the guest: put back as it was */

	for (uint32_t off = 0; off < 0x100; off += 4)
		view_put(v, vdrv_rd(d, off), 4);
	for (unsigned q = 0; q < d->vd->nvqs; q++) {
		vdrv_wr(d, 0x030, q);
		for (uint32_t off = 0x034; off < 0x0b0; off += 4)
			view_put(v, vdrv_rd(d, off), 4);
	}
	vdrv_wr(d, 0x030, sel);
	view_put(v, d->t.dev_feat_sel, 4);
	view_put(v, d->t.drv_feat_sel, 4);
}

/* virtio-pci: configuration space, common configuration (each queue), MSI-X table and PBA. */
static void view_pci(struct vdrv *d, struct view *v)
{
	uint16_t sel = vdrv_bar_rd(d, 0x16, 2);

	for (uint32_t off = 0; off < PCI_CFG_SIZE; off += 4)
		view_put(v, vdrv_cfg_rd(d, off, 4), 4);
	for (uint32_t off = 0; off < 0x38; off += 4)
		view_put(v, vdrv_bar_rd(d, off, 4), 4);
	for (unsigned q = 0; q < d->vd->nvqs; q++) {
		vdrv_bar_wr(d, 0x16, 2, q);
		for (uint32_t off = 0x18; off < 0x38; off += 4)
			view_put(v, vdrv_bar_rd(d, off, 4), 4);
	}
	vdrv_bar_wr(d, 0x16, 2, sel);
	for (uint32_t off = 0; off < d->pci->nvec * 16; off += 4)
		view_put(v, vdrv_bar_rd(d, VPCI_MSIX_OFF + off, 4), 4);
	view_put(v, vdrv_bar_rd(d, VPCI_PBA_OFF, 8), 8);
	view_put(v, d->pci->bar_mapped, 1);
	view_put(v, d->pci->bar_base, 8);
}

/* What the guest can read of the device (the ISR last: on PCI reading it acknowledges). */
static void view_of(struct side *s, struct view *v)
{
	v->n = 0;
	if (s->d.pci)
		view_pci(&s->d, v);
	else
		view_mmio(&s->d, v);
	for (uint32_t off = 0; off < s->vd->config_len; off++)
		view_put(v, vdrv_rd(&s->d, 0x100 + off) & 0xff, 1);
	view_put(v, atomic_load(&s->vd->isr), 1);
}

static bool views_equal(const struct view *a, const struct view *b)
{
	for (size_t i = 0; i < a->n && i < b->n; i++)
		if (a->b[i] != b->b[i]) {
			printf("views differ at byte %zu: 0x%02x, 0x%02x\n", i, a->b[i], b->b[i]);
			return false;
		}
	return a->n == b->n;
}

/* --- saving and restoring ------------------------------------------------------------------ */

/* Pause s's device and save it into a new state (section named after it). NULL if it failed. */
static struct snap *pause_save(struct side *s)
{
	struct snap *st = snap_new();
	struct snap_sec *sec = st ? snap_add(st, s->dev->name) : NULL;

	CHECK(sec != NULL);
	CHECK_EQ(s->dev->ops->pause(s->dev), 0);
	if (!sec || s->dev->ops->save(s->dev, sec)) {
		CHECK(!"saved");
		snap_free(st);
		return NULL;
	}
	return st;
}

/* Restore section name of st into s's device, its errors captured in msg. */
static int restore(struct side *s, const struct snap *st, const char *name, char *msg, size_t len)
{
	FILE *f = fmemopen(msg, len, "w");
	int err;

	memset(msg, 0, len);
	log_capture(f);
	err = s->dev->ops->restore(s->dev, snap_find(st, name));
	log_capture(NULL);
	if (f)
		fclose(f);
	return err;
}

enum how { SET, DROP, TEXT };

/* A copy of st's section name in which field is set to v (SET), left out or made text. */
static struct snap *changed(const struct snap *st, const char *name, const char *field,
			    enum how how, uint64_t v)
{
	const struct snap_sec *from = snap_find(st, name);
	struct snap *c = snap_new();
	struct snap_sec *to = snap_add(c, name);

	for (size_t i = 0; i < snap_nfields(from); i++) {
		struct snap_field_view f;

		snap_field_at(from, i, &f);
		if (!strcmp(f.name, field) && how == DROP)
			continue;
		if (!strcmp(f.name, field))
			how == SET ? snap_put_u64(to, f.name, v) : snap_put_text(to, f.name, "pci");
		else if (f.type == SNAP_U64)
			snap_put_u64(to, f.name, f.u64);
		else if (f.type == SNAP_BYTES)
			snap_put_bytes(to, f.name, f.data, f.len);
		else
			snap_put_text(to, f.name, f.data);
	}
	return c;
}

struct snap *test_snap_with(const struct snap *st, const char *name, const char *field, uint64_t v)
{
	return changed(st, name, field, SET, v);
}

/* The u64 field of section name. */
static uint64_t field_u64(const struct snap *st, const char *name, const char *field)
{
	uint64_t v = ~0ull;

	snap_get_u64(snap_find(st, name), field, &v);
	return v;
}

/* --- virtio-blk ---------------------------------------------------------------------------- */

struct hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

/* Post a read of sector into a new buffer on queue 0; the buffer's guest address. */
static uint64_t post_read(struct vdrv *d, uint64_t sector)
{
	struct hdr h = {htole32(VIRTIO_BLK_T_IN), 0, htole64(sector)};
	uint64_t at = vdrv_alloc(d, sizeof(h) + 512 + 1, 16);
	struct vdrv_buf b[3] = {{at, sizeof(h), false},
				{at + sizeof(h), 512, true},
				{at + sizeof(h) + 512, 1, true}};

	memcpy(vdrv_ptr(d, at), &h, sizeof(h));
	vdrv_post(d, 0, vdrv_chain(d, 0, b, 3));
	return at + sizeof(h);
}

/* The image: sector n holds n in its first 8 bytes. */
static bool make_image(char *path, size_t len)
{
	uint8_t sec[512] = {0};
	int fd;

	snprintf(path, len, "/tmp/mvsnap-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return false;
	for (uint64_t n = 0; n < 256; n++) {
		memcpy(sec, &n, 8);
		if (pwrite(fd, sec, sizeof(sec), n * 512) != sizeof(sec))
			return false;
	}
	close(fd);
	return true;
}

static uint64_t sector_in(struct vdrv *d, uint64_t data)
{
	uint64_t n;

	memcpy(&n, vdrv_ptr(d, data), 8);
	return n;
}

/*
 * The disk's round trip on a transport: three reads completed, a fourth posted (no kick:
 * the driver relies on the device, as with EVENT_IDX) when the VM is saved; restored, the
 * guest sees the same registers, the fourth completes, a fifth posted afterwards too.
 */
static void blk_round_trip(bool pci, bool intx)
{
	struct setup u = {.pci = pci, .intx = intx};
	struct side a, b;
	struct view va, vb;
	uint64_t data[5];
	char image[64], msg[512];
	struct snap *st;

	test_case("blk round trip (%s)", pci ? intx ? "pci, INTx" : "pci, MSI-X" : "mmio");
	if (!make_image(image, sizeof(image)))
		return;
	u.image = image;
	CHECK(side_open(&a, &u) && side_open(&b, &u));
	CHECK_EQ(vdrv_start(&a.d, 1ull << VIRTIO_F_EVENT_IDX, 1, QSIZE) & 0xf, 0xf);
	if (pci && !intx) {
		/* Vector 1 (queue 0) gets a message and is unmasked, the function mask set. */
		vdrv_bar_wr(&a.d, VPCI_MSIX_OFF + 16, 4, 0x1000);
		vdrv_bar_wr(&a.d, VPCI_MSIX_OFF + 24, 4, 0x21);
		vdrv_bar_wr(&a.d, VPCI_MSIX_OFF + 28, 4, 0);
		vdrv_cfg_wr(&a.d, a.d.pci->msix_cap + PCI_MSIX_FLAGS, 2,
			    PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	}
	for (int i = 0; i < 3; i++)
		data[i] = post_read(&a.d, 10 + i);
	vdrv_kick(&a.d, 0);
	CHECK(vdrv_wait_used(&a.d, 0, 3));
	CHECK(sector_in(&a.d, data[2]) == 12);
	if (intx)
		CHECK(vdrv_intx(&a.d) >= 1);
	else if (pci)
		CHECK_EQ(vdrv_bar_rd(&a.d, VPCI_PBA_OFF, 4), 1u << 1); /* masked: pending */
	data[3] = post_read(&a.d, 13);
	st = pause_save(&a);
	if (!st)
		goto out;
	CHECK_EQ(field_u64(st, "blk0", "q0.last_avail"), 3);
	CHECK_EQ(field_u64(st, "blk0", "q0.used_idx"), 3);
	view_of(&a, &va);

	/* The fresh device gets the guest's RAM and the state. */
	vdrv_copy_guest(&b.d, &a.d);
	CHECK_EQ(restore(&b, st, "blk0", msg, sizeof(msg)), 0);
	CHECK_STR(msg, "");
	/* What was posted while it was saved is served by the restore. */
	CHECK(vdrv_wait_used(&b.d, 0, 4));
	CHECK(sector_in(&b.d, data[3]) == 13);
	if (intx)
		CHECK(vdrv_intx(&b.d) >= 1);
	else if (!pci)
		CHECK(b.d.interrupts >= 1);
	/* Every register reads as it did (the new completion's ISR bit and pending vector too). */
	view_of(&b, &vb);
	CHECK(views_equal(&va, &vb));
	/* The queue goes on: a request posted now completes with the next used index. */
	data[4] = post_read(&b.d, 14);
	vdrv_kick(&b.d, 0);
	CHECK(vdrv_wait_used(&b.d, 0, 5));
	CHECK(sector_in(&b.d, data[4]) == 14);
	CHECK_EQ(b.vd->vqs[0].last_avail, 5);
	snap_free(st);
out:
	side_close(&a);
	side_close(&b);
	unlink(image);
}

/* The ISR set by an interrupt the driver did not acknowledge raises the line again. */
static void mmio_line(void)
{
	struct setup u = {0};
	struct side a, b;
	char image[64], msg[512];
	struct snap *st;

	test_case("virtio-mmio interrupt line");
	if (!make_image(image, sizeof(image)))
		return;
	u.image = image;
	CHECK(side_open(&a, &u) && side_open(&b, &u));
	CHECK_EQ(vdrv_start(&a.d, 0, 1, QSIZE) & 0xf, 0xf);
	post_read(&a.d, 1);
	vdrv_kick(&a.d, 0);
	CHECK(vdrv_wait_used(&a.d, 0, 1));
	CHECK(vdrv_rd(&a.d, 0x060) & 1);
	st = pause_save(&a);
	vdrv_copy_guest(&b.d, &a.d);
	CHECK(st && restore(&b, st, "blk0", msg, sizeof(msg)) == 0);
	CHECK_EQ(b.d.interrupts, 1);
	CHECK_EQ(vdrv_rd(&b.d, 0x060), 1);
	/* Acknowledged before the snapshot: no interrupt after it. */
	snap_free(st);
	a.dev->ops->resume(a.dev);
	vdrv_wr(&a.d, 0x064, 1);
	side_close(&b);
	CHECK(side_open(&b, &u));
	st = pause_save(&a);
	vdrv_copy_guest(&b.d, &a.d);
	CHECK(st && restore(&b, st, "blk0", msg, sizeof(msg)) == 0);
	CHECK_EQ(b.d.interrupts, 0);
	snap_free(st);
	side_close(&a);
	side_close(&b);
	unlink(image);
}

/*
 * A state wrong in one field is refused, the field named, and the device stays as it was
 * built: the guest's view of it is that of a fresh device.
 */
static void refused(const struct setup *u, const struct snap *st, const char *name,
		    const char *field, enum how how, uint64_t v, const char *says)
{
	struct snap *c = changed(st, name, field, how, v);
	struct view fresh, after;
	char msg[512];
	struct side b;

	test_case("refused: %s %s", name, field);
	CHECK(side_open(&b, u));
	view_of(&b, &fresh);
	CHECK_EQ(restore(&b, c, name, msg, sizeof(msg)), -EINVAL);
	if (!strstr(msg, says))
		printf("FAIL %s: message '%s' does not say '%s'\n", test_current, msg, says);
	CHECK(strstr(msg, says) != NULL);
	view_of(&b, &after);
	CHECK(views_equal(&fresh, &after));
	CHECK_EQ(b.vd->status, 0);
	CHECK(!b.vd->paused);
	side_close(&b);
	snap_free(c);
}

/* The state of a device of setup u brought up with features and nq queues (NULL if none). */
static struct snap *saved_state(const struct setup *u, uint64_t features, unsigned nq)
{
	struct snap *st = NULL;
	struct side a;

	if (side_open(&a, u)) {
		CHECK_EQ(vdrv_start(&a.d, features, nq, QSIZE) & 0xf, 0xf);
		st = pause_save(&a);
	}
	side_close(&a);
	return st;
}

static void blk_refusals(void)
{
	struct setup u = {.pci = true};
	char image[64];
	struct snap *st, *other;

	test_case("blk refusals");
	if (!make_image(image, sizeof(image)))
		return;
	u.image = image;
	st = saved_state(&u, 0, 1);
	if (!st) {
		unlink(image);
		return;
	}
	refused(&u, st, "blk0", "q0.used_idx", DROP, 0, "field 'q0.used_idx': missing");
	refused(&u, st, "blk0", "q0.num", SET, 48, "field 'q0.num'");
	refused(&u, st, "blk0", "q0.num", SET, 2 * QSIZE, "field 'q0.num'");
	refused(&u, st, "blk0", "q0.used", SET, VDRV_GPA + RAM - 8, "field 'q0.used'");
	refused(&u, st, "blk0", "q0.desc", SET, VDRV_GPA + 8, "field 'q0.desc'");
	refused(&u, st, "blk0", "features", SET, 1ull << VIRTIO_F_VERSION_1 | 1ull << 50,
		"field 'features'");
	refused(&u, st, "blk0", "features", SET, 0, "field 'features'");
	refused(&u, st, "blk0", "status", SET, VIRTIO_STATUS_DRIVER_OK, "field 'status'");
	refused(&u, st, "blk0", "features", SET,
		1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_BLK_F_MQ, "field 'features'");
	refused(&u, st, "blk0", "isr", SET, 4, "field 'isr'");
	refused(&u, st, "blk0", "pci.q0.vector", SET, 2, "field 'pci.q0.vector'");
	refused(&u, st, "blk0", "pci.msix_config", SET, 0x8000, "field 'pci.msix_config'");
	refused(&u, st, "blk0", "device_id", SET, VIRTIO_ID_NET, "field 'device_id'");
	refused(&u, st, "blk0", "queues", SET, 2, "field 'queues'");
	refused(&u, st, "blk0", "pci.config", DROP, 0, "field 'pci.config': missing");
	refused(&u, st, "blk0", "msix.pba", DROP, 0, "field 'msix.pba'");
	refused(&u, st, "blk0", "transport", DROP, 0, "field 'transport': missing");
	/* A virtio-mmio device's state on PCI: its transport is named. */
	u.pci = false;
	refused(&u, st, "blk0", "transport", TEXT, 0, "field 'transport': 'pci'");
	u.pci = true;
	/* Read-only configuration space of another function. */
	other = changed(st, "blk0", "-", DROP, 0);
	{
		const void *p;
		size_t len;
		uint8_t cfg[PCI_CFG_SIZE];
		struct snap *c;

		snap_get_bytes(snap_find(other, "blk0"), "pci.config", &p, &len);
		memcpy(cfg, p, sizeof(cfg));
		cfg[PCI_DEVICE_ID] ^= 1;
		c = changed(other, "blk0", "pci.config", DROP, 0);
		snap_put_bytes((struct snap_sec *)snap_find(c, "blk0"), "pci.config", cfg,
			       sizeof(cfg));
		snap_free(other);
		other = c;
	}
	refused(&u, other, "blk0", "-", DROP, 0, "field 'pci.config': read-only byte 0x02");
	snap_free(other);
	snap_free(st);
	unlink(image);
}

/* --- virtio-net ---------------------------------------------------------------------------- */

/* Post a receive buffer of len bytes on queue q; its guest address. */
static uint64_t post_rx(struct vdrv *d, unsigned q, uint32_t len)
{
	uint64_t at = vdrv_alloc(d, len, 8);

	vdrv_post(d, q, vdrv_chain(d, q, &(struct vdrv_buf){at, len, true}, 1));
	return at;
}

/* Set the number of queue pairs through the control queue (4 with two pairs and MQ). */
static void set_pairs(struct vdrv *d, uint16_t pairs)
{
	struct {
		struct virtio_net_ctrl_hdr h;
		uint16_t pairs;
	} __attribute__((packed))
	cmd = {{VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET}, htole16(pairs)};
	uint64_t at = vdrv_alloc(d, sizeof(cmd) + 1, 8);
	struct vdrv_buf b[2] = {{at, sizeof(cmd), false}, {at + sizeof(cmd), 1, true}};

	memcpy(vdrv_ptr(d, at), &cmd, sizeof(cmd));
	vdrv_post(d, 4, vdrv_chain(d, 4, b, 2));
	vdrv_kick(d, 4);
}

/*
 * A frame from pair's TAP queue reaches a receive buffer the guest posts on a fresh queue,
 * and a frame the guest sends on pair 0 reaches its TAP queue.
 */
static void net_frames(struct side *s, unsigned pair)
{
	uint8_t frame[NET_HDR_LEN + 60] = {0}, got[sizeof(frame) + 8];
	uint64_t rx = post_rx(&s->d, 2 * pair, 2048), tx;

	vdrv_kick(&s->d, 2 * pair);
	frame[NET_HDR_LEN + 14] = 0xa5;
	CHECK(send(s->peer[pair], frame, sizeof(frame), 0) == (ssize_t)sizeof(frame));
	CHECK(vdrv_wait_used(&s->d, 2 * pair, 1));
	CHECK_EQ(((uint8_t *)vdrv_ptr(&s->d, rx))[NET_HDR_LEN + 14], 0xa5);
	tx = vdrv_alloc(&s->d, sizeof(frame), 8);
	memcpy(vdrv_ptr(&s->d, tx), frame, sizeof(frame));
	vdrv_post(&s->d, 1, vdrv_chain(&s->d, 1, &(struct vdrv_buf){tx, sizeof(frame), false}, 1));
	vdrv_kick(&s->d, 1);
	CHECK(vdrv_wait_used(&s->d, 1, 1));
	CHECK(recv(s->peer[0], got, sizeof(got), 0) == (ssize_t)sizeof(frame));
}

/*
 * The NIC's round trip: two pairs in use, a frame read from the TAP waiting for a receive
 * buffer when the VM is saved. Restored, the frame reaches the guest once it posts one, pair
 * 1 receives (two pairs still in use), a frame the guest sends goes out.
 */
static void net_round_trip(bool pci)
{
	struct setup u = {.net = true, .pci = pci};
	uint8_t frame[NET_HDR_LEN + 60] = {0}, got[sizeof(frame) + 8];
	struct side a, b;
	struct view va, vb;
	uint64_t rx;
	char msg[512];
	struct snap *st;
	const void *p;
	size_t len;

	test_case("net round trip (%s)", pci ? "pci" : "mmio");
	CHECK(side_open(&a, &u) && side_open(&b, &u));
	CHECK_EQ(vdrv_start(&a.d, NF(CTRL_VQ) | NF(MQ) | NF(MRG_RXBUF), 5, QSIZE) & 0xf, 0xf);
	set_pairs(&a.d, 2);
	CHECK(vdrv_wait_used(&a.d, 4, 1));
	/* A frame with no receive buffer: read from the TAP, staged. */
	frame[NET_HDR_LEN + 14] = 0x5a;
	CHECK(send(a.peer[0], frame, sizeof(frame), 0) == (ssize_t)sizeof(frame));
	for (int i = 0; i < 5; i++)
		loop_poll(&a.d.loop, 10);
	CHECK(recv(a.fds[0], got, sizeof(got), MSG_DONTWAIT) < 0);
	st = pause_save(&a);
	if (!st)
		goto out;
	CHECK_EQ(field_u64(st, "net0", "net.pairs"), 2);
	CHECK(snap_get_bytes(snap_find(st, "net0"), "net.p0.rx_frame", &p, &len) == 0 &&
	      len == sizeof(frame));
	view_of(&a, &va);
	vdrv_copy_guest(&b.d, &a.d);
	CHECK_EQ(restore(&b, st, "net0", msg, sizeof(msg)), 0);
	CHECK_STR(msg, "");
	view_of(&b, &vb);
	CHECK(views_equal(&va, &vb));
	/* The staged frame arrives as soon as there is a buffer. */
	rx = post_rx(&b.d, 0, 2048);
	vdrv_kick(&b.d, 0);
	CHECK(vdrv_wait_used(&b.d, 0, 1));
	CHECK_EQ(((uint8_t *)vdrv_ptr(&b.d, rx))[NET_HDR_LEN + 14], 0x5a);
	/* Pair 1 is in use: its TAP queue is read. Transmit goes out through the new TAP. */
	net_frames(&b, 1);
	snap_free(st);
out:
	side_close(&a);
	side_close(&b);
}

/* The vhost instance (not but) whose receive ring the kernel has, or -1. */
static int vhost_on(int but)
{
	for (int i = 0; i < VHOSTWRAP_MAX; i++)
		if (i != but && vhostwrap[i].open && vhostwrap[i].ring[0].on)
			return i;
	return -1;
}

/* vhost = on: the restored rings go to the kernel at the place the saved ones stopped. */
static void net_vhost(void)
{
	struct setup u = {.net = true, .vhost = true};
	struct side a, b;
	char msg[512];
	struct snap *st;
	int fa, fb;

	test_case("net vhost round trip");
	CHECK(side_open(&a, &u));
	CHECK_EQ(vdrv_start(&a.d, NF(MRG_RXBUF), 2, QSIZE) & 0xf, 0xf);
	fa = vhost_on(-1);
	CHECK(fa >= 0);
	if (fa < 0)
		goto out;
	/* The kernel took 7 receive buffers and 3 transmit ones, used 5 of the first. */
	vhostwrap[fa].ring[0].base = 7;
	vhostwrap[fa].ring[1].base = 3;
	((uint16_t *)vdrv_ptr(&a.d, a.d.q[0].used))[1] = htole16(5);
	st = pause_save(&a);
	CHECK(st && field_u64(st, "net0", "q0.last_avail") == 7);
	CHECK(st && field_u64(st, "net0", "q0.used_idx") == 5);
	CHECK(side_open(&b, &u));
	vdrv_copy_guest(&b.d, &a.d);
	CHECK(st && restore(&b, st, "net0", msg, sizeof(msg)) == 0);
	fb = vhost_on(fa);
	CHECK(fb >= 0 && vhostwrap[fb].ring[1].on);
	CHECK(fb >= 0 && vhostwrap[fb].ring[0].base == 7 && vhostwrap[fb].ring[1].base == 3);
	snap_free(st);
	side_close(&b);
out:
	side_close(&a);
}

/* The MAC address in s's configuration space, as the guest reads it (a byte at a time). */
static void mac_of(struct side *s, uint8_t mac[6])
{
	for (unsigned i = 0; i < 6; i++) {
		uint32_t off = offsetof(struct virtio_net_config, mac) + i;

		mac[i] = (uint8_t)(s->d.pci ? vdrv_bar_rd(&s->d, VPCI_DEVICE_OFF + off, 1)
					    : vdrv_rd(&s->d, 0x100 + off));
	}
}

/*
 * A clone with its own MAC address (a restore's net0.mac): the state restores, the
 * configuration space shows the new address under a new generation, and nothing interrupts
 * the guest for it. When the driver resets the device and probes it again (a guest that
 * unbinds and binds virtio_net) it reads the new address, and frames go both ways (vhost:
 * the kernel gets the new rings from their start). Another difference (the MTU) is refused.
 */
static void net_new_mac(bool pci, bool vhost)
{
	static const uint8_t want[6] = {0x02, 0x4d, 0x56, 0x00, 0x00, 0x42};
	struct setup u = {.net = true, .pci = pci, .vhost = vhost};
	uint8_t mac[6], old[6];
	struct setup clone = u, mtu = u;
	struct side a, b;
	uint32_t gen;
	char msg[512];
	struct snap *st;
	int fa, fb;

	test_case("net new MAC (%s%s)", pci ? "pci" : "mmio", vhost ? ", vhost" : "");
	clone.set = "net0.mac=02:4d:56:00:00:42";
	mtu.set = "net0.mtu=9000";
	CHECK(side_open(&a, &u) && side_open(&b, &clone));
	CHECK_EQ(vdrv_start(&a.d, NF(MAC) | NF(MRG_RXBUF), 2, QSIZE) & 0xf, 0xf);
	fa = vhost_on(-1);
	CHECK(vhost == (fa >= 0));
	post_rx(&a.d, 0, 2048); /* a receive buffer the guest had posted (vhost: unkicked) */
	mac_of(&a, old);
	CHECK(memcmp(old, want, 6) != 0);
	gen = vdrv_rd(&a.d, 0x0fc);
	st = pause_save(&a);
	if (!st)
		goto out;
	vdrv_copy_guest(&b.d, &a.d);
	CHECK_EQ(restore(&b, st, "net0", msg, sizeof(msg)), 0);
	CHECK_STR(msg, "");
	mac_of(&b, mac);
	CHECK(memcmp(mac, want, 6) == 0);
	CHECK_EQ(vdrv_rd(&b.d, 0x0fc), (gen + 1) & (pci ? 0xff : 0xffffffff));
	CHECK_EQ(b.d.interrupts, 0);
	if (pci)
		CHECK_EQ(vdrv_bar_rd(&b.d, VPCI_PBA_OFF, 4), 0);
	CHECK_EQ(vdrv_rd(&b.d, 0x060), 0); /* no configuration change in the ISR */
	fb = vhost_on(fa);
	CHECK(vhost == (fb >= 0));
	/* The driver probes again: a reset, then the whole initialisation on new rings. */
	CHECK_EQ(vdrv_start(&b.d, NF(MAC) | NF(MRG_RXBUF), 2, QSIZE) & 0xf, 0xf);
	mac_of(&b, mac);
	CHECK(memcmp(mac, want, 6) == 0);
	if (vhost) {
		fb = vhost_on(fa);
		CHECK(fb >= 0 && vhostwrap[fb].ring[1].on && vhostwrap[fb].ring[0].base == 0 &&
		      vhostwrap[fb].ring[1].base == 0);
		goto done;
	}
	net_frames(&b, 0);
done:
	refused(&mtu, st, "net0", "-", DROP, 0, "field 'config'");
	snap_free(st);
out:
	side_close(&a);
	side_close(&b);
}

/* The NIC's own fields are checked after the core's: a refusal undoes the core's too. */
static void net_refusals(void)
{
	struct setup u = {.net = true};
	struct snap *st, *c;
	const void *p;
	size_t len;
	uint8_t frame[NET_HDR_LEN + 60] = {0};

	test_case("net refusals");
	st = saved_state(&u, NF(CTRL_VQ) | NF(MQ), 5);
	if (!st)
		return;
	refused(&u, st, "net0", "net.pairs", SET, 3, "field 'net.pairs'");
	refused(&u, st, "net0", "net.hdr_len", SET, 10, "field 'net.hdr_len'");
	refused(&u, st, "net0", "net.p1.vhost_lost", SET, 2, "field 'net.p1.vhost_lost'");
	refused(&u, st, "net0", "mmio.queue_sel", DROP, 0, "field 'mmio.queue_sel'");
	/* A staged frame must be one the TAP could have given: not a few bytes. */
	c = changed(st, "net0", "-", DROP, 0);
	snap_put_bytes((struct snap_sec *)snap_find(c, "net0"), "net.p0.rx_frame", frame, 5);
	refused(&u, c, "net0", "-", DROP, 0, "field 'net.p0.rx_frame'");
	snap_free(c);
	/* Nor one with a partial checksum the guest did not negotiate. */
	c = changed(st, "net0", "-", DROP, 0);
	frame[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	snap_put_bytes((struct snap_sec *)snap_find(c, "net0"), "net.p0.rx_frame", frame,
		       sizeof(frame));
	refused(&u, c, "net0", "-", DROP, 0, "field 'net.p0.rx_frame'");
	CHECK(snap_get_bytes(snap_find(c, "net0"), "net.p0.rx_frame", &p, &len) == 0);
	snap_free(c);
	snap_free(st);
}

/* --- what a restore may change -------------------------------------------------------------- */

/*
 * Restore a state whose machine is that of in with the override set (one "--set"): 0 and
 * nothing said, or -EINVAL and a message that holds says (and each of and, if not NULL).
 */
static void restore_set(struct snapshot_in *in, const char *set, const char *says, const char *and)
{
	struct machine_override ov = {.arg = set, .origin = "--set"};
	char msg[1024] = "";
	FILE *f = fmemopen(msg, sizeof(msg) - 1, "w");
	struct machine m;
	int err;

	test_case("restore --set %s", set);
	log_capture(f);
	err = snapshot_machine(in, &ov, 1, &m);
	log_capture(NULL);
	if (f)
		fclose(f);
	CHECK_EQ(err, says ? -EINVAL : 0);
	if ((says && !strstr(msg, says)) || (and&&!strstr(msg, and)) || (!says && *msg))
		printf("FAIL %s: said '%s'\n", test_current, msg);
	CHECK(says ? strstr(msg, says) != NULL : !*msg);
	CHECK(!and || strstr(msg, and) != NULL);
	machine_free(&m);
}

/*
 * A restore may set only the keys a device's type lists (a disk's path or engine, a NIC's
 * TAP, data path or MAC address) and the host-side [machine] keys; anything else is refused
 * with the override and what its section's type would take named, before anything loads.
 */
static void restore_keys(void)
{
	char image[64], path[96], *text = NULL;
	char *sets[] = {"net0.type=virtio-net", "net0.tap=mvsnap%d", "blk0.type=virtio-blk", path};
	struct snapshot_in in = {.state_path = "test.state"};
	struct machine base;
	struct snap_sec *sec;
	size_t len = 0;
	FILE *f;

	test_case("restore keys");
	/* (a restore takes a machine of the architecture this host's KVM runs) */
	if (!kvm_guest_arch || !make_image(image, sizeof(image)))
		return;
	snprintf(path, sizeof(path), "blk0.path=%s", image);
	if (!test_machine_load(&base,
			       kvm_guest_arch == &arch_arm64 ? "machines/rpi5.ini"
							     : "machines/x86_64.ini",
			       sets, 4)) {
		unlink(image);
		return;
	}
	f = open_memstream(&text, &len);
	CHECK(f && cfg_dump(&base.cfg, f, NULL, NULL) == 0);
	if (f)
		fclose(f);
	in.state = snap_new();
	in.ram_size = base.ram_size;
	sec = snap_add(in.state, "snapshot");
	CHECK(sec && snap_put_u64(sec, "vcpus", base.vcpus) == 0);
	sec = snap_add(in.state, "machine");
	CHECK(sec && text && snap_put_text(sec, "ini", text) == 0);
	free(text);
	machine_free(&base);

	restore_set(&in, "net0.mac=02:00:00:00:00:42", NULL, NULL);
	restore_set(&in, "net0.tap=mvclone%d", NULL, NULL);
	restore_set(&in, "net0.vhost=off", NULL, NULL);
	restore_set(&in, "blk0.engine=sync", NULL, NULL);
	restore_set(&in, "uart0.mac=02:00:00:00:00:42",
		    "--set uart0.mac=02:00:00:00:00:42: a restore cannot change this",
		    "of [uart0] (a ns16550a) it may set host, path, log, append or sanitize");
	restore_set(&in, "blk0.mac=02:00:00:00:00:42",
		    "--set blk0.mac=02:00:00:00:00:42: a restore",
		    "of [blk0] (a virtio-blk) it may set path or engine");
	restore_set(&in, "net0.mtu=9000", "--set net0.mtu=9000: a restore cannot change this",
		    "of [net0] (a virtio-net) it may set tap, vhost or mac");
	restore_set(&in, "memory.size=2G", "--set memory.size=2G: a restore cannot change this",
		    "of [memory] it may set none");
	restore_set(
		&in, "machine.vcpus=1", "--set machine.vcpus=1: a restore cannot change this",
		"of [machine] it may set user, seccomp, seccomp_deny, api_sock or snapshot_dir");
	restore_set(&in, "net1.tap=tap1", "the snapshot's machine has no [net1]", NULL);
	restore_set(&in, "net0.mac", "--set net0.mac: expected SECTION.KEY=VALUE", NULL);
	/* A key a restore may set is still checked as in a machine file. */
	restore_set(&in, "net0.mac=02:00:00:00:00", "is not a unicast MAC address", NULL);
	restore_set(&in, "net0.mac=03:00:00:00:00:42", "is not a unicast MAC address", NULL);
	snap_free(in.state);
	unlink(image);
}

/* --- boot timer ----------------------------------------------------------------------------- */

/* The guest's millisecond counter goes on from the saved value. */
static void boot_timer(void)
{
	struct machine m;
	struct device *dev;
	struct snap *st = snap_new();
	struct snap_sec *sec = snap_add(st, "boot-timer");
	uint8_t ms[4];
	uint32_t now;

	test_case("boot timer");
	if (!test_machine_load(&m, "machines/rpi5.ini", NULL, 0))
		return;
	dev = find_dev(&m, "boot-timer");
	CHECK(dev != NULL);
	if (dev) {
		CHECK_EQ(snap_put_u64(sec, "ms", 4000000000u), 0);
		CHECK_EQ(dev->ops->restore(dev, sec), 0);
		boot_timer_access(dev->priv, 0, ms, 4, false);
		memcpy(&now, ms, sizeof(now));
		now = le32toh(now);
		CHECK(now >= 4000000000u && now < 4000000000u + 60000);
	}
	snap_free(st);
	machine_free(&m);
}

void test_devsnap(void)
{
	blk_round_trip(false, false);
	blk_round_trip(true, false);
	blk_round_trip(true, true);
	mmio_line();
	blk_refusals();
	net_round_trip(false);
	net_round_trip(true);
	net_vhost();
	net_new_mac(false, false);
	net_new_mac(true, false);
	net_new_mac(false, true);
	net_new_mac(true, true);
	net_refusals();
	restore_keys();
	boot_timer();
}
