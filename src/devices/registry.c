/* registry: every device type, one line each (the INI section's `type = ...`). */
#include <string.h>

#include "array.h"
#include "device.h"
#include "devices/boottimer.h"
#include "devices/uart.h"
#include "devices/vmgenid.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"

static const struct device_ops *const types[] = {
	&uart_ops,	 &boot_timer_ops, &vmgenid_ops,	     &virtio_blk_ops,
	&virtio_net_ops, &virtio_rng_ops, &virtio_vsock_ops, &virtio_balloon_ops,
};

#define NTYPES ARRAY_SIZE(types)

const struct device_ops *device_type(const char *type)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (!strcmp(types[i]->type, type))
			return types[i];
	return NULL;
}

const char *const *device_type_names(void)
{
	static const char *names[NTYPES + 1];

	for (size_t i = 0; i < NTYPES; i++)
		names[i] = types[i]->type;
	return names;
}
