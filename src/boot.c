/* boot: reads the boot files named by the machine and places them in guest RAM. */
#include "boot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "blob.h"
#include "log.h"
#include "machine.h"
#include "mem.h"

static int open_one(const char *what, const char *path, uint64_t max, bool inflate, struct blob *b)
{
	int err = blob_open(b, path, max, inflate);

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
	bi->kernel.fd = bi->initrd.fd = -1;
	if (!m->kernel && need_kernel) {
		log_error("%s: no kernel: set [boot] kernel or pass --kernel", m->cfg.path);
		return -EINVAL;
	}
	bi->kernel_path = m->kernel;
	bi->initrd_path = m->initrd;
	/* A gzip kernel is inflated on its way into RAM; an initrd goes as it is (the kernel
	 * unpacks compressed initramfs archives itself). */
	if (m->kernel) {
		err = open_one("kernel", m->kernel, m->ram_size, true, &bi->kernel);
		if (err)
			return err;
	}
	if (m->initrd) {
		err = open_one("initrd", m->initrd, m->ram_size, false, &bi->initrd);
		if (err)
			goto fail;
	}
	/* A gzip kernel's length is known once inflated: its header's footprint bounds it. */
	err = m->arch->boot_layout(m, m->kernel ? bi->kernel.head : NULL,
				   !m->kernel	     ? 0
				   : bi->kernel.gzip ? bi->kernel.head_len
						     : bi->kernel.size,
				   m->initrd ? bi->initrd.size : 0, &bi->layout, why, sizeof(why));
	if (err) {
		log_error("%s: %s", m->kernel && strstr(why, "kernel") ? m->kernel : m->cfg.path,
			  why);
		goto fail;
	}
	return 0;
fail:
	boot_free(bi);
	return err;
}

/* Load b at gpa, into at most room bytes of guest RAM. */
static int load_one(const char *what, const char *path, const struct blob *b,
		    const struct guest_mem *mem, uint64_t gpa, uint64_t room)
{
	void *dst = gm_ptr(mem, gpa, room);
	uint64_t len;
	int err;

	if (!dst) {
		log_error("%s %s: its place in guest RAM (0x%llx, %llu bytes) is not RAM", what,
			  path, (unsigned long long)gpa, (unsigned long long)room);
		return -EINVAL;
	}
	err = blob_load(b, dst, room, &len);
	if (err == -EFBIG)
		log_error("%s %s: more than the %llu bytes its header says it needs", what, path,
			  (unsigned long long)room);
	else if (err == -EIO)
		log_error("%s %s: shorter than when it was opened (changed meanwhile?)", what,
			  path);
	else if (err == -EINVAL)
		log_error("%s %s: corrupt gzip data", what, path);
	else if (err)
		log_error("%s %s: %s", what, path, strerror(-err));
	return err;
}

int boot_load(const struct boot_images *bi, const struct guest_mem *mem)
{
	const struct boot_layout *bl = &bi->layout;
	int err = 0;

	if (bi->kernel.fd >= 0)
		err = load_one("kernel", bi->kernel_path, &bi->kernel, mem, bl->kernel_addr,
			       bl->kernel_end - bl->kernel_addr);
	if (!err && bi->initrd.fd >= 0 && bi->initrd.size)
		err = load_one("initrd", bi->initrd_path, &bi->initrd, mem, bl->initrd_addr,
			       bi->initrd.size);
	return err;
}

void boot_free(struct boot_images *bi)
{
	blob_close(&bi->kernel);
	blob_close(&bi->initrd);
}
