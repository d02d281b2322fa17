/*
 * vmgenid: a VM generation ID (Microsoft's; Linux 6.10+ finds it in the device tree as
 * "microsoft,vmgenid"): 16 random bytes at the start of a page of memory the guest maps, and
 * an edge-triggered interrupt. A restore writes new bytes and raises the interrupt; the
 * guest's driver then mixes them into its random number generator and reseeds it at once, so
 * clones restored from one snapshot do not share their RNG state.
 */
#include "devices/vmgenid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "alloc.h"
#include "arch.h"
#include "config.h"
#include "irq.h"
#include "log.h"
#include "machine.h"
#include "snapshot/snapfile.h"
#include "vm.h"

struct vmgenid {
	uint64_t base, size;
	uint32_t irq;
	uint8_t *page; /* the memory behind the guest's page (a memory slot of its own) */
	struct vm *vm;
};

static int gen_configure(struct device *dev, struct machine *m)
{
	struct vmgenid *g = calloc(1, sizeof(*g));
	struct cfg *c = &m->cfg;
	int err = 0;

	if (!g)
		return -1;
	dev->priv = g;
	/* A page of its own (a memory slot), or the machine's alignment unit when larger. */
	g->size = m->align > 0x1000 ? m->align : 0x1000;
	err |= cfg_u64(c, dev->name, "base", &g->base, 0, CFG_REQUIRED);
	err |= cfg_u32(c, dev->name, "irq", &g->irq, 0, 0, 1019, CFG_REQUIRED);
	if (err)
		return -1;
	err |= alloc_region(&m->alloc, dev->name, "generation ID", g->base, g->size,
			    cfg_get(c, dev->name, "base"));
	if (!err)
		alloc_region_irqs(&m->alloc, dev->name, g->irq, 1);
	err |= alloc_irqs(&m->alloc, dev->name, g->irq, 1, cfg_get(c, dev->name, "irq"));
	return err;
}

static void gen_describe(const struct device *dev, FILE *out)
{
	const struct vmgenid *g = dev->priv;

	fprintf(out, "  %s: vmgenid at 0x%llx, irq %u (a new ID at every restore)\n", dev->name,
		(unsigned long long)g->base, g->irq);
}

/* New random bytes for the ID. 0 or -errno. */
static int gen_new_id(struct vmgenid *g)
{
	uint8_t id[VMGENID_SIZE];

	if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
		return -EIO;
	memcpy(g->page, id, sizeof(id));
	return 0;
}

static int gen_realize(struct device *dev, struct vm *vm)
{
	struct vmgenid *g = dev->priv;
	long page = sysconf(_SC_PAGESIZE);
	int err;

	if (g->size % (uint64_t)page || g->base % (uint64_t)page) {
		log_error("%s: its page at 0x%llx must be aligned to this host's %ld-byte pages "
			  "([machine] align)",
			  dev->name, (unsigned long long)g->base, page);
		return -EINVAL;
	}
	g->page = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->page == MAP_FAILED) {
		g->page = NULL;
		return -ENOMEM;
	}
	err = gen_new_id(g);
	err = err ?: vm_map_memory(vm, g->base, g->page, g->size);
	if (err)
		return err;
	g->vm = vm;
	return 0;
}

static void gen_unrealize(struct device *dev)
{
	struct vmgenid *g = dev->priv;

	/* The VM goes away next (its slot with it); no vCPU runs any more. */
	if (g->page)
		munmap(g->page, g->size);
	g->page = NULL;
	g->vm = NULL;
}

static void gen_hw(const struct device *dev, struct hw_desc *d)
{
	const struct vmgenid *g = dev->priv;

	*d = (struct hw_desc){.kind = HW_VMGENID,
			      .base = g->base,
			      .size = g->size,
			      .has_irq = true,
			      .level = false,
			      .irq = g->irq};
}

/* The ID the guest has seen (for the record: a restore replaces it). */
static int gen_save(struct device *dev, struct snap_sec *sec)
{
	struct vmgenid *g = dev->priv;

	return snap_put_bytes(sec, "id", g->page, VMGENID_SIZE);
}

/* A restore is a new generation: a new ID, and the interrupt that tells the guest. */
static int gen_restore(struct device *dev, const struct snap_sec *sec)
{
	struct vmgenid *g = dev->priv;
	uint8_t old[VMGENID_SIZE];
	int err = snap_need_bytes(sec, "id", old, sizeof(old));

	err = err ?: gen_new_id(g);
	if (err) {
		log_error("%s: no new generation ID: %s", dev->name, strerror(-err));
		return err;
	}
	irq_line(&g->vm->irq, g->irq, 1);
	irq_line(&g->vm->irq, g->irq, 0);
	log_info("%s: a new generation ID for the restored VM", dev->name);
	return 0;
}

const struct device_ops vmgenid_ops = {
	.type = "vmgenid",
	.configure = gen_configure,
	.describe = gen_describe,
	.realize = gen_realize,
	.unrealize = gen_unrealize,
	.hw = gen_hw,
	.save = gen_save,
	.restore = gen_restore,
	.destroy = device_free_priv,
};
