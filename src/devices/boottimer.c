/* boot-timer: an MMIO register the guest's init writes when user space starts. */
#include "devices/boottimer.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "arch.h"
#include "config.h"
#include "le.h"
#include "log.h"
#include "machine.h"
#include "snapshot/snapfile.h"
#include "timeline.h"
#include "vm.h"

struct boot_timer {
	uint64_t base, size;
	uint32_t offset_ms; /* added to the counter: a restored guest's continues where it was */
};

/* The counter the guest reads: milliseconds since microvm started, 32 bits, wrapping. */
static uint32_t timer_ms(const struct boot_timer *t)
{
	return (uint32_t)(timeline_now() * 1e3) + (t ? t->offset_ms : 0);
}

void boot_timer_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	uint8_t ms[4];

	if (is_write) {
		if (offset == 0 && data[0] == BOOT_TIMER_MAGIC &&
		    timeline_at(TL_INIT_REACHED) < 0) {
			timeline_mark(TL_INIT_REACHED);
			log_info("guest user space started at %.1f ms",
				 timeline_at(TL_INIT_REACHED) * 1e3);
		}
		return;
	}
	le32_put(ms, timer_ms(opaque));
	memset(data, 0, len);
	if (offset < 4)
		memcpy(data, ms + offset, len < 4 - offset ? len : 4 - offset);
}

static int timer_configure(struct device *dev, struct machine *m)
{
	struct boot_timer *t = calloc(1, sizeof(*t));
	struct cfg *c = &m->cfg;

	if (!t)
		return -1;
	dev->priv = t;
	/* One page, or the machine's alignment unit when that is larger. */
	t->size = m->align > 0x1000 ? m->align : 0x1000;
	if (cfg_u64(c, dev->name, "base", &t->base, 0, CFG_REQUIRED))
		return -1;
	return alloc_region(&m->alloc, dev->name, "register", t->base, t->size,
			    cfg_get(c, dev->name, "base"));
}

static void timer_describe(const struct device *dev, FILE *out)
{
	const struct boot_timer *t = dev->priv;

	fprintf(out, "  %s: boot-timer at 0x%llx (init writes %d at offset 0)\n", dev->name,
		(unsigned long long)t->base, BOOT_TIMER_MAGIC);
}

static int timer_realize(struct device *dev, struct vm *vm)
{
	struct boot_timer *t = dev->priv;

	return bus_register(&vm->bus, t->base, t->size, boot_timer_access, t, dev->name);
}

static void timer_hw(const struct device *dev, struct hw_desc *d)
{
	const struct boot_timer *t = dev->priv;

	*d = (struct hw_desc){.kind = HW_BOOT_TIMER, .base = t->base, .size = t->size};
}

/* A snapshot: the counter as the guest reads it now ("ms"). */
static int timer_save(struct device *dev, struct snap_sec *sec)
{
	return snap_put_u64(sec, "ms", timer_ms(dev->priv));
}

/* The counter goes on from the saved value: it never runs backwards for the guest. */
static int timer_restore(struct device *dev, const struct snap_sec *sec)
{
	struct boot_timer *t = dev->priv;
	uint64_t ms;
	int err = snap_need_u64(sec, "ms", UINT32_MAX, &ms);

	if (!err)
		t->offset_ms = (uint32_t)ms - (uint32_t)(timeline_now() * 1e3);
	return err;
}

const struct device_ops boot_timer_ops = {
	.type = "boot-timer",
	.configure = timer_configure,
	.describe = timer_describe,
	.realize = timer_realize,
	.hw = timer_hw,
	.save = timer_save,
	.restore = timer_restore,
	.destroy = device_free_priv,
};
