/* arch: the table of guest architectures and the boot-information container. */
#include "arch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "device.h"

const struct arch *arch_by_name(const char *name)
{
	static const struct arch *const all[] = {&arch_arm64, &arch_x86_64};

	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		if (!strcmp(all[i]->name, name))
			return all[i];
	return NULL;
}

void arch_device_hw(const struct device *dev, struct hw_desc *d)
{
	memset(d, 0, sizeof(*d));
	if (dev->ops->hw)
		dev->ops->hw(dev, d);
}

int boot_info_add(struct boot_info *bi, const char *name, uint64_t gpa, void *data, size_t len)
{
	if (bi->n == BOOT_CHUNKS_MAX) {
		free(data);
		return -ENOSPC;
	}
	bi->chunk[bi->n++] = (struct boot_chunk){name, gpa, data, len};
	return 0;
}

const struct boot_chunk *boot_info_find(const struct boot_info *bi, const char *name)
{
	for (unsigned i = 0; i < bi->n; i++)
		if (!strcmp(bi->chunk[i].name, name))
			return &bi->chunk[i];
	return NULL;
}

void boot_info_free(struct boot_info *bi)
{
	for (unsigned i = 0; i < bi->n; i++)
		free(bi->chunk[i].data);
	bi->n = 0;
}
