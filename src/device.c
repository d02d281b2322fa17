/* device: the registry of device types, one line per type. */
#include "device.h"

#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "devices/boottimer.h"
#include "devices/uart.h"
#include "virtio/blk.h"
#include "virtio/net.h"

static const struct device_ops *const types[] = {
	&uart_ops,
	&boot_timer_ops,
	&virtio_blk_ops,
	&virtio_net_ops,
};

const struct device_ops *device_type(const char *type)
{
	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		if (!strcmp(types[i]->type, type))
			return types[i];
	return NULL;
}

const char *const *device_type_names(void)
{
	static const char *names[ARRAY_SIZE(types) + 1];

	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		names[i] = types[i]->type;
	return names;
}

void device_free_priv(struct device *dev)
{
	free(dev->priv);
	dev->priv = NULL;
}
