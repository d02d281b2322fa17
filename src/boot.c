/* boot: reads the boot files named by the machine and places them in guest RAM. */
#include "boot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "blob.h"
#include "config.h"
#include "log.h"
#include "machine.h"
#include "mem.h"

/* The [boot] key that named file what ("kernel", "initrd"), or NULL. */
static struct cfg_entry *key_of(struct cfg *c, const char *what)
{
	return cfg_get(c, "boot", what);
}

/* Open one boot file; errors at its key. A missing initrd of a dump is left out (said). */
static int open_one(struct machine *m, const char *what, const char *path, bool inflate,
		    enum boot_use use, struct blob *b)
{
	struct cfg *c = &m->cfg;
	int err = blob_open(b, path, m->ram_size, inflate);
	char loc[512];

	if (err == -ENOENT && use == BOOT_DUMP) {
		cfg_where(key_of(c, what), loc, sizeof(loc));
		log_warn("%s: '%s' does not exist: the device tree names no initrd (pass --%s FILE "
			 "for what a run would have, or --%s= for none)",
			 loc, path, what, what);
		return 1;
	}
	if (err == -ENOENT)
		cfg_error(c, key_of(c, what), "boot", "'%s' does not exist", path);
	else if (err == -EFBIG)
		cfg_error(c, key_of(c, what), "boot", "'%s' is larger than the %llu MiB of RAM",
			  path, (unsigned long long)(m->ram_size >> 20));
	else if (err == -EISDIR)
		cfg_error(c, key_of(c, what), "boot", "'%s' is a directory, not a regular file",
			  path);
	else if (err == -EINVAL)
		cfg_error(c, key_of(c, what), "boot",
			  "'%s' is not a regular file or holds corrupt gzip data", path);
	else if (err)
		cfg_error(c, key_of(c, what), "boot", "cannot read '%s': %s", path, strerror(-err));
	return err;
}

/*
 * The placement of the kernel (when open) and of an initrd of initrd_len bytes; an error
 * at the key at fault: what the kernel alone cannot pass is the kernel's (or the command
 * line's: -E2BIG), what fails only with the initrd is the initrd's.
 */
static int place(struct machine *m, struct boot_images *bi)
{
	struct cfg *c = &m->cfg;
	const uint8_t *head = bi->kernel.fd >= 0 ? bi->kernel.head : NULL;
	/* A gzip kernel's length is known once inflated: its header's footprint bounds it. */
	size_t klen = !head ? 0 : bi->kernel.gzip ? bi->kernel.head_len : bi->kernel.size;
	uint64_t initrd_len = bi->initrd.fd >= 0 ? bi->initrd.size : 0;
	char why[256];
	int err;

	err = m->arch->boot_layout(m, head, klen, 0, &bi->layout, why, sizeof(why));
	if (err == -E2BIG) {
		cfg_error(c, cfg_get(c, "boot", "cmdline"), "boot", "%s", why);
		return err;
	}
	if (err) {
		if (head)
			cfg_error(c, key_of(c, "kernel"), "boot", "'%s': %s", bi->kernel_path, why);
		else
			cfg_error(c, NULL, "boot", "%s", why);
		return err;
	}
	if (!initrd_len)
		return 0;
	err = m->arch->boot_layout(m, head, klen, initrd_len, &bi->layout, why, sizeof(why));
	if (err)
		cfg_error(c, key_of(c, "initrd"), "boot", "'%s': %s", bi->initrd_path, why);
	return err;
}

int boot_prepare(struct machine *m, struct boot_images *bi, enum boot_use use)
{
	int err = 0, ierr = 0;

	memset(bi, 0, sizeof(*bi));
	bi->kernel.fd = bi->initrd.fd = -1;
	bi->cfg = &m->cfg;
	if (!m->kernel && use == BOOT_RUN) {
		cfg_error(&m->cfg, NULL, "boot", "no kernel: set [boot] kernel or pass --kernel");
		return -EINVAL;
	}
	/*
	 * A gzip kernel is inflated on its way into RAM; an initrd goes as it is (the kernel
	 * unpacks compressed initramfs archives itself). A dump needs no kernel: what the guest
	 * is told does not depend on it. Both files are looked at, whatever the first says.
	 */
	if (m->kernel && use == BOOT_RUN) {
		bi->kernel_path = m->kernel;
		err = open_one(m, "kernel", m->kernel, true, use, &bi->kernel);
	}
	if (m->initrd) {
		ierr = open_one(m, "initrd", m->initrd, false, use, &bi->initrd);
		bi->initrd_path = ierr > 0 ? NULL : m->initrd;
		ierr = ierr > 0 ? 0 : ierr;
	}
	err = err ?: ierr ?: place(m, bi);
	if (err)
		boot_free(bi);
	return err;
}

/* Load b at gpa, into at most room bytes of guest RAM; errors at the key what. */
static int load_one(struct cfg *c, const char *what, const char *path, const struct blob *b,
		    const struct guest_mem *mem, uint64_t gpa, uint64_t room)
{
	void *dst = gm_ptr(mem, gpa, room);
	struct cfg_entry *e = key_of(c, what);
	uint64_t len;
	int err;

	if (!dst) {
		cfg_error(c, e, "boot",
			  "'%s': its place in guest RAM (0x%llx, %llu bytes) is not RAM", path,
			  (unsigned long long)gpa, (unsigned long long)room);
		return -EINVAL;
	}
	err = blob_load(b, dst, room, &len);
	if (err == -EFBIG)
		cfg_error(c, e, "boot", "'%s': more than the %llu bytes its header says it needs",
			  path, (unsigned long long)room);
	else if (err == -EIO)
		cfg_error(c, e, "boot",
			  "'%s' is shorter than when it was opened (changed meanwhile?)", path);
	else if (err == -EINVAL)
		cfg_error(c, e, "boot", "'%s': corrupt gzip data", path);
	else if (err)
		cfg_error(c, e, "boot", "cannot read '%s': %s", path, strerror(-err));
	return err;
}

int boot_load(const struct boot_images *bi, const struct guest_mem *mem)
{
	const struct boot_layout *bl = &bi->layout;
	int err = 0;

	if (bi->kernel.fd >= 0)
		err = load_one(bi->cfg, "kernel", bi->kernel_path, &bi->kernel, mem,
			       bl->kernel_addr, bl->kernel_end - bl->kernel_addr);
	if (!err && bi->initrd.fd >= 0 && bi->initrd.size)
		err = load_one(bi->cfg, "initrd", bi->initrd_path, &bi->initrd, mem,
			       bl->initrd_addr, bi->initrd.size);
	return err;
}

void boot_free(struct boot_images *bi)
{
	blob_close(&bi->kernel);
	blob_close(&bi->initrd);
}
