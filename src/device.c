/* device: what every device type shares (the type table is devices/registry.c). */
#include "device.h"

#include <stdlib.h>

void device_free_priv(struct device *dev)
{
	free(dev->priv);
	dev->priv = NULL;
}
