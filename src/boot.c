/* boot: reads the boot files named by the machine and places them in guest RAM. */
#include "boot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "log.h"
#include "machine.h"

static int read_one(const char *what, const char *path, size_t max, uint8_t **buf, size_t *len)
{
	int err = blob_read(path, max, buf, len);

	if (err == -EFBIG)
		log_error("%s %s: larger than guest RAM", what, path);
	else if (err == -EINVAL)
		log_error("%s %s: not a regular file or corrupt gzip data", what, path);
	else if (err)
		log_error("%s %s: %s", what, path, strerror(-err));
	return err;
}

int boot_prepare(const struct machine *m, struct boot_images *bi, int need_kernel)
{
	char why[256];
	int err;

	memset(bi, 0, sizeof(*bi));
	if (!m->kernel && need_kernel) {
		log_error("%s: no kernel: set [boot] kernel or pass --kernel", m->cfg.path);
		return -EINVAL;
	}
	if (m->kernel) {
		err = read_one("kernel", m->kernel, m->ram_size, &bi->kernel, &bi->kernel_len);
		if (err)
			return err;
	}
	if (m->initrd) {
		err = read_one("initrd", m->initrd, m->ram_size, &bi->initrd, &bi->initrd_len);
		if (err)
			goto fail;
	}
	err = arch_boot_layout(m->ram_base, m->ram_size, bi->kernel, bi->kernel_len, bi->initrd_len,
			       &bi->layout, why, sizeof(why));
	if (err) {
		log_error("%s: %s", bi->kernel && strstr(why, "kernel") ? m->kernel : m->cfg.path,
			  why);
		goto fail;
	}
	return 0;
fail:
	boot_free(bi);
	return err;
}

void boot_free(struct boot_images *bi)
{
	free(bi->kernel);
	free(bi->initrd);
	memset(bi, 0, sizeof(*bi));
}
