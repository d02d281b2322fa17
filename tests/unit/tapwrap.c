/*
 * The TAP and vhost calls seen by virtio-net in tests: the unit tests and the fuzzer back a
 * NIC with socket pairs, which have no TAP offloads or queues, and have no /dev/vhost-net.
 * They link with -Wl,--wrap=tap_set_offload,... (TAPWRAP in the Makefile), so these take the
 * calls. The vhost here is a model that keeps the kernel's rules (no ring set up twice, live
 * eventfds only) and aborts when microvm breaks them; tests make it signal its eventfds.
 * virtio_lock passes through lockwrap_before: a test puts another thread's work in the
 * moment a handler waits for the device lock.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "backends/vhost.h"
#include "tapwrap.h"
#include "virtio/virtio.h"
#include "virtio/virtq.h"

int __wrap_tap_set_offload(int fd, unsigned flags);
int __wrap_tap_set_queue_enabled(int fd, bool enabled);
bool __wrap_tap_deleted(int fd);
int __wrap_vhost_net_open(struct vhost_net *v, const struct guest_mem *mem);
void __wrap_vhost_net_close(struct vhost_net *v);
int __wrap_vhost_net_set_features(struct vhost_net *v, uint64_t features);
int __wrap_vhost_net_start(struct vhost_net *v, unsigned idx, const struct vhost_vring *vq,
			   int kick, int call, int err, int tap);
int __wrap_vhost_net_set_call(struct vhost_net *v, unsigned idx, int call);
int __wrap_vhost_net_stop(struct vhost_net *v, unsigned idx);
void __real_virtio_lock(struct virtio_dev *vd);
void __wrap_virtio_lock(struct virtio_dev *vd);

unsigned tapwrap_offload_calls, tapwrap_queue_calls;
struct vhostwrap vhostwrap[VHOSTWRAP_MAX];
void (*lockwrap_before)(void *arg);
void *lockwrap_arg;

int __wrap_tap_set_offload(int fd, unsigned flags)
{
	(void)fd;
	(void)flags;
	tapwrap_offload_calls++;
	return 0;
}

int __wrap_tap_set_queue_enabled(int fd, bool enabled)
{
	(void)fd;
	(void)enabled;
	tapwrap_queue_calls++;
	return 0;
}

/* A stand-in's interface is deleted when its peer went (EPOLLERR or EPOLLHUP, for ever). */
bool __wrap_tap_deleted(int fd)
{
	struct pollfd p = {.fd = fd};

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

static struct vhostwrap *fake(const struct vhost_net *v)
{
	if (v->fd < VHOSTWRAP_FD0 || v->fd >= VHOSTWRAP_FD0 + VHOSTWRAP_MAX ||
	    !vhostwrap[v->fd - VHOSTWRAP_FD0].open)
		abort(); /* not an open instance */
	return &vhostwrap[v->fd - VHOSTWRAP_FD0];
}

static void live_fd(int fd)
{
	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
		abort();
}

int __wrap_vhost_net_open(struct vhost_net *v, const struct guest_mem *mem)
{
	(void)mem;
	for (int i = 0; i < VHOSTWRAP_MAX; i++) {
		if (vhostwrap[i].open)
			continue;
		vhostwrap[i] = (struct vhostwrap){.open = true};
		v->fd = VHOSTWRAP_FD0 + i;
		v->features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX |
			      1ull << VIRTIO_F_INDIRECT_DESC | 1ull << 15 /* MRG_RXBUF */;
		return 0;
	}
	return -EMFILE;
}

void __wrap_vhost_net_close(struct vhost_net *v)
{
	if (v->fd < 0)
		return;
	fake(v)->open = false;
	v->fd = -1;
}

int __wrap_vhost_net_set_features(struct vhost_net *v, uint64_t features)
{
	struct vhostwrap *f = fake(v);

	if ((features & ~v->features) || f->ring[0].on || f->ring[1].on)
		abort(); /* features change only while no ring runs */
	f->features = features;
	return 0;
}

int __wrap_vhost_net_start(struct vhost_net *v, unsigned idx, const struct vhost_vring *vq,
			   int kick, int call, int err, int tap)
{
	struct vhostwrap *f = fake(v);
	struct vhostwrap_ring *r = &f->ring[idx & 1];

	if (idx > 1 || r->on || !vq->desc || !vq->avail || !vq->used)
		abort(); /* the kernel says EBUSY/EINVAL; microvm must never ask */
	live_fd(kick);
	live_fd(call);
	live_fd(err);
	live_fd(tap);
	*r = (struct vhostwrap_ring){
		.on = true, .kick = kick, .call = call, .err = err, .base = vq->next_avail};
	f->starts++;
	return 0;
}

int __wrap_vhost_net_set_call(struct vhost_net *v, unsigned idx, int call)
{
	struct vhostwrap *f = fake(v);

	if (idx > 1)
		abort();
	live_fd(call);
	f->ring[idx].call = call;
	return 0;
}

int __wrap_vhost_net_stop(struct vhost_net *v, unsigned idx)
{
	struct vhostwrap *f = fake(v);

	if (idx > 1)
		abort();
	f->ring[idx].on = false;
	return f->ring[idx].base;
}

bool vhostwrap_signal(unsigned i, unsigned idx, bool err)
{
	struct vhostwrap_ring *r;
	uint64_t one = 1;

	if (i >= VHOSTWRAP_MAX || idx > 1 || !vhostwrap[i].open || !vhostwrap[i].ring[idx].on)
		return false;
	r = &vhostwrap[i].ring[idx];
	return write(err ? r->err : r->call, &one, sizeof(one)) == sizeof(one);
}

void __wrap_virtio_lock(struct virtio_dev *vd)
{
	void (*fn)(void *) = lockwrap_before;

	lockwrap_before = NULL;
	if (fn)
		fn(lockwrap_arg);
	__real_virtio_lock(vd);
}
