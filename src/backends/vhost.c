/* vhost: the kernel's virtio-net data path (/dev/vhost-net), one instance per queue pair. */
#include "backends/vhost.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int ring_file(const struct vhost_net *v, unsigned long req, unsigned idx, int fd)
{
	struct vhost_vring_file f = {.index = idx, .fd = fd};

	return ioctl(v->fd, req, &f) < 0 ? -errno : 0;
}

int vhost_net_open(struct vhost_net *v, const struct guest_mem *mem)
{
	struct vhost_memory *table;
	int err = 0;

	v->fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
	if (v->fd < 0)
		return -errno;
	table = calloc(1, sizeof(*table) + 2 * sizeof(table->regions[0]));
	if (!table) {
		err = -ENOMEM;
	} else {
		/* Guest RAM, and its part above the hole when it has one. */
		table->nregions = mem->hi_size ? 2 : 1;
		table->regions[0] = (struct vhost_memory_region){
			.guest_phys_addr = mem->gpa,
			.memory_size = mem->size,
			.userspace_addr = (uintptr_t)mem->hva,
		};
		table->regions[1] = (struct vhost_memory_region){
			.guest_phys_addr = mem->hi_gpa,
			.memory_size = mem->hi_size,
			.userspace_addr = (uintptr_t)(mem->hva + mem->size),
		};
		if (ioctl(v->fd, VHOST_SET_OWNER) < 0 ||
		    ioctl(v->fd, VHOST_GET_FEATURES, &v->features) < 0 ||
		    ioctl(v->fd, VHOST_SET_MEM_TABLE, table) < 0)
			err = -errno;
		free(table);
	}
	if (err) {
		close(v->fd);
		v->fd = -1;
	}
	return err;
}

void vhost_net_close(struct vhost_net *v)
{
	if (v->fd < 0)
		return;
	vhost_net_stop(v, 0);
	vhost_net_stop(v, 1);
	close(v->fd);
	v->fd = -1;
}

int vhost_net_set_features(struct vhost_net *v, uint64_t features)
{
	if (features & ~v->features)
		return -EINVAL;
	return ioctl(v->fd, VHOST_SET_FEATURES, &features) < 0 ? -errno : 0;
}

int vhost_net_start(struct vhost_net *v, unsigned idx, const struct vhost_vring *ring, int kick,
		    int call, int err, int tap)
{
	struct vhost_vring_state num = {.index = idx, .num = ring->num};
	struct vhost_vring_state base = {.index = idx, .num = ring->next_avail};
	struct vhost_vring_addr addr = {
		.index = idx,
		.desc_user_addr = (uintptr_t)ring->desc,
		.avail_user_addr = (uintptr_t)ring->avail,
		.used_user_addr = (uintptr_t)ring->used,
	};
	int r = 0;

	if (!ring->desc)
		return -EINVAL;
	if (ioctl(v->fd, VHOST_SET_VRING_NUM, &num) < 0 ||
	    ioctl(v->fd, VHOST_SET_VRING_BASE, &base) < 0 ||
	    ioctl(v->fd, VHOST_SET_VRING_ADDR, &addr) < 0)
		r = -errno;
	r = r ?: ring_file(v, VHOST_SET_VRING_KICK, idx, kick);
	r = r ?: ring_file(v, VHOST_SET_VRING_CALL, idx, call);
	r = r ?: ring_file(v, VHOST_SET_VRING_ERR, idx, err);
	/* Last: from here on the kernel reads the ring and moves frames. */
	r = r ?: ring_file(v, VHOST_NET_SET_BACKEND, idx, tap);
	return r;
}

int vhost_net_set_call(struct vhost_net *v, unsigned idx, int call)
{
	return ring_file(v, VHOST_SET_VRING_CALL, idx, call);
}

int vhost_net_stop(struct vhost_net *v, unsigned idx)
{
	struct vhost_vring_state base = {.index = idx};
	int r;

	/* Detaching the backend waits for the kernel's worker: no access to the ring after. */
	ring_file(v, VHOST_NET_SET_BACKEND, idx, -1);
	r = ioctl(v->fd, VHOST_GET_VRING_BASE, &base) < 0 ? -errno : (int)(uint16_t)base.num;
	ring_file(v, VHOST_SET_VRING_KICK, idx, -1);
	ring_file(v, VHOST_SET_VRING_CALL, idx, -1);
	ring_file(v, VHOST_SET_VRING_ERR, idx, -1);
	return r;
}
