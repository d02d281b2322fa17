/*
 * x86-64 snapshot: each vCPU's registers (general, special, FPU/XSAVE, XCRs, debug), CPUID,
 * MSRs, LAPIC, pending events and run state; the in-kernel PIC, IOAPIC and PIT; kvmclock;
 * the platform's PCI address latch. Saved as named fields, restored into a fresh VM.
 *
 * Restore reads and checks everything first (every field, against this host's KVM: CPU
 * features, MSRs, XSAVE components, TSC rate) into memory, and only then writes: a state this
 * host cannot take back changes nothing.
 */
#include "kvm_arch.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "array.h"
#include "le.h"
#include "log.h"
#include "snapshot/devstate.h"
#include "snapshot/snapfile.h"
#include "vm.h"
#include "x86.h"

#define MSR_IA32_TSC	      0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define CPUID_MAX	      256
#define MSR_MAX		      1024
#define MSR_BATCH	      255 /* KVM_GET/SET_MSRS take fewer than 256 at once */
#define TSC_PPM		      250 /* KVM runs a rate this close to the host's unscaled */
#define DR_UPPER	      0xffffffff00000000ull /* DR6 and DR7 bits that must be zero */
#define XSAVE_LEGACY	      4096		    /* KVM_GET_XSAVE's size, and XSAVE2's least */
#define XSAVE_BV_OFF	      512		    /* XSTATE_BV in the XSAVE header */
#define CPUID_ENTRY_BYTES     28 /* function, index, flags, eax, ebx, ecx, edx: u32 each */

/* MSRs KVM keeps but does not list: the MTRRs (the guest's memory types). */
static const uint32_t extra_msrs[] = {
	0x2ff,							/* MTRRdefType */
	0x200, 0x201, 0x202, 0x203, 0x204, 0x205, 0x206, 0x207, /* variable ranges 0-3 */
	0x208, 0x209, 0x20a, 0x20b, 0x20c, 0x20d, 0x20e, 0x20f, /* variable ranges 4-7 */
	0x250, 0x258, 0x259,					/* fixed ranges */
	0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f,
};

/* The MSRs this host's KVM saves and restores (KVM_GET_MSR_INDEX_LIST plus extra_msrs). */
static uint32_t *host_msrs;
static unsigned n_host_msrs;

/* A named integer member of a KVM structure: its offset and size (1, 2, 4 or 8 bytes). */
struct fdesc {
	const char *name;
	uint16_t off;
	uint8_t size;
};

#define FD(type, member, name)                                                                     \
	{                                                                                          \
		name, offsetof(type, member), sizeof(((type *)0)->member)                          \
	}

static const struct fdesc regs_fields[] = {
	FD(struct kvm_regs, rax, "rax"), FD(struct kvm_regs, rbx, "rbx"),
	FD(struct kvm_regs, rcx, "rcx"), FD(struct kvm_regs, rdx, "rdx"),
	FD(struct kvm_regs, rsi, "rsi"), FD(struct kvm_regs, rdi, "rdi"),
	FD(struct kvm_regs, rsp, "rsp"), FD(struct kvm_regs, rbp, "rbp"),
	FD(struct kvm_regs, r8, "r8"),	 FD(struct kvm_regs, r9, "r9"),
	FD(struct kvm_regs, r10, "r10"), FD(struct kvm_regs, r11, "r11"),
	FD(struct kvm_regs, r12, "r12"), FD(struct kvm_regs, r13, "r13"),
	FD(struct kvm_regs, r14, "r14"), FD(struct kvm_regs, r15, "r15"),
	FD(struct kvm_regs, rip, "rip"), FD(struct kvm_regs, rflags, "rflags"),
};

static const struct fdesc seg_fields[] = {
	FD(struct kvm_segment, base, "base"),
	FD(struct kvm_segment, limit, "limit"),
	FD(struct kvm_segment, selector, "selector"),
	FD(struct kvm_segment, type, "type"),
	FD(struct kvm_segment, present, "present"),
	FD(struct kvm_segment, dpl, "dpl"),
	FD(struct kvm_segment, db, "db"),
	FD(struct kvm_segment, s, "s"),
	FD(struct kvm_segment, l, "l"),
	FD(struct kvm_segment, g, "g"),
	FD(struct kvm_segment, avl, "avl"),
	FD(struct kvm_segment, unusable, "unusable"),
};

static const struct {
	const char *name;
	size_t off;
} segs[] = {
	{"cs", offsetof(struct kvm_sregs, cs)}, {"ds", offsetof(struct kvm_sregs, ds)},
	{"es", offsetof(struct kvm_sregs, es)}, {"fs", offsetof(struct kvm_sregs, fs)},
	{"gs", offsetof(struct kvm_sregs, gs)}, {"ss", offsetof(struct kvm_sregs, ss)},
	{"tr", offsetof(struct kvm_sregs, tr)}, {"ldt", offsetof(struct kvm_sregs, ldt)},
};

static const struct fdesc sregs_fields[] = {
	FD(struct kvm_sregs, gdt.base, "gdt.base"),
	FD(struct kvm_sregs, gdt.limit, "gdt.limit"),
	FD(struct kvm_sregs, idt.base, "idt.base"),
	FD(struct kvm_sregs, idt.limit, "idt.limit"),
	FD(struct kvm_sregs, cr0, "cr0"),
	FD(struct kvm_sregs, cr2, "cr2"),
	FD(struct kvm_sregs, cr3, "cr3"),
	FD(struct kvm_sregs, cr4, "cr4"),
	FD(struct kvm_sregs, cr8, "cr8"),
	FD(struct kvm_sregs, efer, "efer"),
	FD(struct kvm_sregs, apic_base, "apic_base"),
};

static const struct fdesc events_fields[] = {
	FD(struct kvm_vcpu_events, exception.injected, "exception.injected"),
	FD(struct kvm_vcpu_events, exception.nr, "exception.nr"),
	FD(struct kvm_vcpu_events, exception.has_error_code, "exception.has_error_code"),
	FD(struct kvm_vcpu_events, exception.pending, "exception.pending"),
	FD(struct kvm_vcpu_events, exception.error_code, "exception.error_code"),
	FD(struct kvm_vcpu_events, interrupt.injected, "interrupt.injected"),
	FD(struct kvm_vcpu_events, interrupt.nr, "interrupt.nr"),
	FD(struct kvm_vcpu_events, interrupt.soft, "interrupt.soft"),
	FD(struct kvm_vcpu_events, interrupt.shadow, "interrupt.shadow"),
	FD(struct kvm_vcpu_events, nmi.injected, "nmi.injected"),
	FD(struct kvm_vcpu_events, nmi.pending, "nmi.pending"),
	FD(struct kvm_vcpu_events, nmi.masked, "nmi.masked"),
	FD(struct kvm_vcpu_events, sipi_vector, "sipi_vector"),
	FD(struct kvm_vcpu_events, smi.smm, "smi.smm"),
	FD(struct kvm_vcpu_events, smi.pending, "smi.pending"),
	FD(struct kvm_vcpu_events, smi.smm_inside_nmi, "smi.smm_inside_nmi"),
	FD(struct kvm_vcpu_events, smi.latched_init, "smi.latched_init"),
};

static const struct fdesc debug_fields[] = {
	FD(struct kvm_debugregs, db[0], "dr0"), FD(struct kvm_debugregs, db[1], "dr1"),
	FD(struct kvm_debugregs, db[2], "dr2"), FD(struct kvm_debugregs, db[3], "dr3"),
	FD(struct kvm_debugregs, dr6, "dr6"),	FD(struct kvm_debugregs, dr7, "dr7"),
};

static const struct fdesc pic_fields[] = {
	FD(struct kvm_pic_state, last_irr, "last_irr"),
	FD(struct kvm_pic_state, irr, "irr"),
	FD(struct kvm_pic_state, imr, "imr"),
	FD(struct kvm_pic_state, isr, "isr"),
	FD(struct kvm_pic_state, priority_add, "priority_add"),
	FD(struct kvm_pic_state, irq_base, "irq_base"),
	FD(struct kvm_pic_state, read_reg_select, "read_reg_select"),
	FD(struct kvm_pic_state, poll, "poll"),
	FD(struct kvm_pic_state, special_mask, "special_mask"),
	FD(struct kvm_pic_state, init_state, "init_state"),
	FD(struct kvm_pic_state, auto_eoi, "auto_eoi"),
	FD(struct kvm_pic_state, rotate_on_auto_eoi, "rotate_on_auto_eoi"),
	FD(struct kvm_pic_state, special_fully_nested_mode, "special_fully_nested_mode"),
	FD(struct kvm_pic_state, init4, "init4"),
	FD(struct kvm_pic_state, elcr, "elcr"),
	FD(struct kvm_pic_state, elcr_mask, "elcr_mask"),
};

static const struct fdesc ioapic_fields[] = {
	FD(struct kvm_ioapic_state, base_address, "base_address"),
	FD(struct kvm_ioapic_state, ioregsel, "ioregsel"),
	FD(struct kvm_ioapic_state, id, "id"),
	FD(struct kvm_ioapic_state, irr, "irr"),
};

static const struct fdesc pit_fields[] = {
	FD(struct kvm_pit_channel_state, count, "count"),
	FD(struct kvm_pit_channel_state, latched_count, "latched_count"),
	FD(struct kvm_pit_channel_state, count_latched, "count_latched"),
	FD(struct kvm_pit_channel_state, status_latched, "status_latched"),
	FD(struct kvm_pit_channel_state, status, "status"),
	FD(struct kvm_pit_channel_state, read_state, "read_state"),
	FD(struct kvm_pit_channel_state, write_state, "write_state"),
	FD(struct kvm_pit_channel_state, write_latch, "write_latch"),
	FD(struct kvm_pit_channel_state, rw_mode, "rw_mode"),
	FD(struct kvm_pit_channel_state, mode, "mode"),
	FD(struct kvm_pit_channel_state, bcd, "bcd"),
	FD(struct kvm_pit_channel_state, gate, "gate"),
};

/* Save the members of st that t names, as u64 fields "<prefix><name>". */
static int put_fields(struct snap_sec *sec, const char *prefix, const void *st,
		      const struct fdesc *t, size_t n)
{
	char name[SNAP_NAME_MAX + 1];
	int err = 0;

	for (size_t i = 0; !err && i < n; i++) {
		uint64_t v = 0;

		memcpy(&v, (const uint8_t *)st + t[i].off, t[i].size); /* little-endian host */
		snprintf(name, sizeof(name), "%s%s", prefix, t[i].name);
		err = snap_put_u64(sec, name, v);
	}
	return err;
}

/* Read them back into st: each present, a number that fits its member. 0 or -EINVAL (said). */
static int need_fields(const struct snap_sec *sec, const char *prefix, void *st,
		       const struct fdesc *t, size_t n)
{
	char name[SNAP_NAME_MAX + 1];
	int err = 0;

	for (size_t i = 0; !err && i < n; i++) {
		uint64_t v, max = t[i].size == 8 ? UINT64_MAX : (1ull << (8 * t[i].size)) - 1;

		snprintf(name, sizeof(name), "%s%s", prefix, t[i].name);
		err = snap_need_u64(sec, name, max, &v);
		if (!err)
			memcpy((uint8_t *)st + t[i].off, &v, t[i].size);
	}
	return err;
}

static int vcpu_ioctl(const struct vcpu *v, unsigned long req, void *arg, const char *what)
{
	if (ioctl(v->fd, req, arg) >= 0)
		return 0;
	int err = -errno;

	log_error("snapshot: vcpu%u: %s: %s", v->id, what, strerror(errno));
	return err;
}

static int vm_ioctl(const struct vm *vm, unsigned long req, void *arg, const char *what)
{
	if (ioctl(vm->vm_fd, req, arg) >= 0)
		return 0;
	int err = -errno;

	log_error("snapshot: %s: %s", what, strerror(errno));
	return err;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static bool host_has_msr(uint32_t index)
{
	return host_msrs && bsearch(&index, host_msrs, n_host_msrs, sizeof(*host_msrs), cmp_u32);
}

int x86_snap_init(struct vm *vm)
{
	struct kvm_msr_list probe = {0}, *l;
	unsigned n;

	if (host_msrs)
		return 0;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return -errno;
	n = probe.nmsrs > MSR_MAX ? MSR_MAX : probe.nmsrs;
	l = calloc(1, sizeof(*l) + (n + ARRAY_SIZE(extra_msrs)) * sizeof(uint32_t));
	if (!l)
		return -ENOMEM;
	l->nmsrs = n;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		int err = -errno;

		free(l);
		return err;
	}
	memcpy(l->indices + l->nmsrs, extra_msrs, sizeof(extra_msrs));
	n = l->nmsrs + ARRAY_SIZE(extra_msrs);
	qsort(l->indices, n, sizeof(uint32_t), cmp_u32);
	host_msrs = malloc(n * sizeof(uint32_t));
	if (!host_msrs) {
		free(l);
		return -ENOMEM;
	}
	/* (without duplicates: a later KVM may list what extra_msrs adds) */
	n_host_msrs = 0;
	for (unsigned i = 0; i < n; i++)
		if (!n_host_msrs || host_msrs[n_host_msrs - 1] != l->indices[i])
			host_msrs[n_host_msrs++] = l->indices[i];
	free(l);
	return 0;
}

/* The XSAVE area's size on this host: KVM_CAP_XSAVE2's, else the legacy 4 KiB. */
static size_t xsave_size(const struct vm *vm)
{
	int n = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	return n > XSAVE_LEGACY ? (size_t)n : XSAVE_LEGACY;
}

/* --- saving ------------------------------------------------------------------------------ */

static int save_sregs(const struct vcpu *v, struct snap_sec *sec)
{
	struct kvm_sregs s;
	uint8_t bitmap[sizeof(s.interrupt_bitmap)];
	char prefix[8];
	int err = vcpu_ioctl(v, KVM_GET_SREGS, &s, "KVM_GET_SREGS");

	for (size_t i = 0; !err && i < ARRAY_SIZE(segs); i++) {
		snprintf(prefix, sizeof(prefix), "%s.", segs[i].name);
		err = put_fields(sec, prefix, (const uint8_t *)&s + segs[i].off, seg_fields,
				 ARRAY_SIZE(seg_fields));
	}
	err = err ?: put_fields(sec, "", &s, sregs_fields, ARRAY_SIZE(sregs_fields));
	if (err)
		return err;
	for (size_t i = 0; i < ARRAY_SIZE(s.interrupt_bitmap); i++)
		le64_put(bitmap + 8 * i, s.interrupt_bitmap[i]);
	return snap_put_bytes(sec, "interrupt_bitmap", bitmap, sizeof(bitmap));
}

static int save_fpu(const struct vcpu *v, struct snap_sec *sec)
{
	size_t size = xsave_size(v->vm);
	struct kvm_xsave *x = calloc(1, size);
	struct kvm_xcrs xcrs;
	int err;

	if (!x)
		return -ENOMEM;
	err = size > XSAVE_LEGACY ? vcpu_ioctl(v, KVM_GET_XSAVE2, x, "KVM_GET_XSAVE2")
				  : vcpu_ioctl(v, KVM_GET_XSAVE, x, "KVM_GET_XSAVE");
	err = err ?: snap_put_bytes(sec, "xsave", x, size);
	free(x);
	err = err ?: vcpu_ioctl(v, KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS");
	/* XCR0, the one KVM keeps (KVM_SET_XCRS takes no other). */
	for (unsigned i = 0; !err && i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
		if (xcrs.xcrs[i].xcr == 0)
			return snap_put_u64(sec, "xcr0", xcrs.xcrs[i].value);
	if (!err)
		log_error("snapshot: vcpu%u: KVM gave no XCR0 (a host without XSAVE: not "
			  "supported)",
			  v->id);
	return err ?: -ENOTSUP;
}

/* The vCPU's CPUID as the guest sees it: entries of 7 little-endian u32 (docs/snapshot.md). */
static int save_cpuid(const struct vcpu *v, struct snap_sec *sec)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + CPUID_MAX * sizeof(c->entries[0]));
	uint8_t *b = NULL;
	int err;

	if (!c)
		return -ENOMEM;
	c->nent = CPUID_MAX;
	err = vcpu_ioctl(v, KVM_GET_CPUID2, c, "KVM_GET_CPUID2");
	if (!err && !(b = calloc(c->nent, CPUID_ENTRY_BYTES)))
		err = -ENOMEM;
	for (uint32_t i = 0; !err && i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];
		const uint32_t w[7] = {e->function, e->index, e->flags, e->eax,
				       e->ebx,	    e->ecx,   e->edx};

		for (unsigned k = 0; k < 7; k++)
			le32_put(b + i * CPUID_ENTRY_BYTES + 4 * k, w[k]);
	}
	err = err ?: snap_put_bytes(sec, "cpuid", b, (size_t)c->nent * CPUID_ENTRY_BYTES);
	free(b);
	free(c);
	return err;
}

/* Every MSR the host lists that this vCPU has: "msr.<index in 8 hex digits>". */
static int save_msrs(const struct vcpu *v, struct snap_sec *sec)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n_host_msrs * sizeof(m->entries[0]));
	unsigned from = 0;
	char name[16];
	int err = 0;

	if (!m)
		return -ENOMEM;
	/* KVM_GET_MSRS stops at the first MSR this vCPU lacks: skip it and go on. */
	while (!err && from < n_host_msrs) {
		int got;

		m->nmsrs = n_host_msrs - from > MSR_BATCH ? MSR_BATCH : n_host_msrs - from;
		for (unsigned i = 0; i < m->nmsrs; i++)
			m->entries[i] = (struct kvm_msr_entry){.index = host_msrs[from + i]};
		got = ioctl(v->fd, KVM_GET_MSRS, m);
		if (got < 0) {
			err = -errno;
			log_error("snapshot: vcpu%u: KVM_GET_MSRS: %s", v->id, strerror(errno));
			break;
		}
		for (int i = 0; !err && i < got; i++) {
			snprintf(name, sizeof(name), "msr.%08x", m->entries[i].index);
			err = snap_put_u64(sec, name, m->entries[i].data);
		}
		/* (a short count: the MSR after the last one read is not this vCPU's) */
		from += (unsigned)got + ((unsigned)got < m->nmsrs);
	}
	free(m);
	return err;
}

static int save_vcpu(const struct vcpu *v, struct snap *s)
{
	struct kvm_regs regs;
	struct kvm_vcpu_events ev;
	struct kvm_debugregs dbg;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp;
	char name[SNAP_NAME_MAX];
	struct snap_sec *sec;
	int tsc_khz, err;

	snprintf(name, sizeof(name), "vcpu%u", v->id);
	sec = snap_add(s, name);
	if (!sec)
		return -ENOMEM;
	err = vcpu_ioctl(v, KVM_GET_REGS, &regs, "KVM_GET_REGS");
	err = err ?: put_fields(sec, "", &regs, regs_fields, ARRAY_SIZE(regs_fields));
	err = err ?: save_sregs(v, sec);
	err = err ?: save_fpu(v, sec);
	err = err ?: save_cpuid(v, sec);
	err = err ?: save_msrs(v, sec);
	err = err ?: vcpu_ioctl(v, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC");
	err = err ?: snap_put_bytes(sec, "lapic", lapic.regs, sizeof(lapic.regs));
	err = err ?: vcpu_ioctl(v, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	err = err ?: put_fields(sec, "", &ev, events_fields, ARRAY_SIZE(events_fields));
	err = err ?: vcpu_ioctl(v, KVM_GET_DEBUGREGS, &dbg, "KVM_GET_DEBUGREGS");
	err = err ?: put_fields(sec, "", &dbg, debug_fields, ARRAY_SIZE(debug_fields));
	err = err ?: vcpu_ioctl(v, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE");
	err = err ?: snap_put_u64(sec, "mp_state", mp.mp_state);
	if (err)
		return err;
	tsc_khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (tsc_khz <= 0)
		return vcpu_ioctl(v, KVM_GET_TSC_KHZ, NULL, "KVM_GET_TSC_KHZ") ?: -EIO;
	return snap_put_u64(sec, "tsc_khz", (uint64_t)tsc_khz);
}

static int save_irqchip(const struct vm *vm, struct snap *s)
{
	struct snap_sec *sec = snap_add(s, "irqchip"), *pit;
	struct kvm_irqchip chip[3] = {{.chip_id = KVM_IRQCHIP_PIC_MASTER},
				      {.chip_id = KVM_IRQCHIP_PIC_SLAVE},
				      {.chip_id = KVM_IRQCHIP_IOAPIC}};
	struct kvm_pit_state2 ps;
	char name[SNAP_NAME_MAX];
	int err = sec ? 0 : -ENOMEM;

	for (int i = 0; !err && i < 3; i++)
		err = vm_ioctl(vm, KVM_GET_IRQCHIP, &chip[i], "KVM_GET_IRQCHIP");
	err = err
		      ?: put_fields(sec, "pic0.", &chip[0].chip.pic, pic_fields,
				    ARRAY_SIZE(pic_fields));
	err = err
		      ?: put_fields(sec, "pic1.", &chip[1].chip.pic, pic_fields,
				    ARRAY_SIZE(pic_fields));
	err = err
		      ?: put_fields(sec, "ioapic.", &chip[2].chip.ioapic, ioapic_fields,
				    ARRAY_SIZE(ioapic_fields));
	for (unsigned i = 0; !err && i < KVM_IOAPIC_NUM_PINS; i++) {
		snprintf(name, sizeof(name), "ioapic.redir%u", i);
		err = snap_put_u64(sec, name, chip[2].chip.ioapic.redirtbl[i].bits);
	}
	if (err)
		return err;
	pit = snap_add(s, "pit");
	err = pit ? vm_ioctl(vm, KVM_GET_PIT2, &ps, "KVM_GET_PIT2") : -ENOMEM;
	for (unsigned i = 0; !err && i < 3; i++) {
		snprintf(name, sizeof(name), "ch%u.", i);
		err = put_fields(pit, name, &ps.channels[i], pit_fields, ARRAY_SIZE(pit_fields));
	}
	return err ?: snap_put_u64(pit, "flags", ps.flags);
}

static int save_clock(const struct vm *vm, struct snap *s)
{
	struct snap_sec *sec = snap_add(s, "clock");
	struct kvm_clock_data c = {0};
	int err = sec ? vm_ioctl(vm, KVM_GET_CLOCK, &c, "KVM_GET_CLOCK") : -ENOMEM;

	err = err ?: snap_put_u64(sec, "kvmclock", c.clock);
	return err ?: snap_put_u64(sec, "pci_cf8", x86_platform_cf8(vm, NULL));
}

int kvm_arch_save(struct vm *vm, struct snap *s)
{
	int err = host_msrs ? 0 : -ENOTSUP;

	if (err)
		log_error("snapshot: this host's KVM gave no MSR list at start");
	for (unsigned i = 0; !err && i < vm->nvcpus; i++)
		err = save_vcpu(&vm->vcpus[i], s);
	err = err ?: save_irqchip(vm, s);
	return err ?: save_clock(vm, s);
}

/* --- restoring --------------------------------------------------------------------------- */

/* One vCPU's saved state, read and checked. */
struct xvcpu {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_xsave *xsave; /* this host's XSAVE size, the saved bytes then zeros */
	struct kvm_cpuid2 *cpuid;
	struct kvm_msrs *msrs; /* the TSC first; the TSC deadline apart (after the LAPIC) */
	bool has_deadline;
	uint64_t deadline;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events ev;
	struct kvm_debugregs dbg;
	struct kvm_mp_state mp;
	uint64_t tsc_khz;
};

/* What a restore works with: the VM, the state, the XSAVE components this host offers. */
struct rst_ctx {
	struct vm *vm;
	const struct snap *s;
	uint64_t host_xcr0;
};

struct xstate {
	struct xvcpu *v;
	unsigned n;
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;
	uint64_t kvmclock, cf8;
};

static int load_sregs(const struct snap_sec *sec, struct kvm_sregs *s)
{
	char prefix[8];
	const void *p;
	int err = 0;

	for (size_t i = 0; !err && i < ARRAY_SIZE(segs); i++) {
		snprintf(prefix, sizeof(prefix), "%s.", segs[i].name);
		err = need_fields(sec, prefix, (uint8_t *)s + segs[i].off, seg_fields,
				  ARRAY_SIZE(seg_fields));
	}
	err = err ?: need_fields(sec, "", s, sregs_fields, ARRAY_SIZE(sregs_fields));
	err = err ?: devstate_need_blob(sec, "interrupt_bitmap", sizeof(s->interrupt_bitmap), &p);
	for (size_t i = 0; !err && i < ARRAY_SIZE(s->interrupt_bitmap); i++)
		s->interrupt_bitmap[i] = le64_get((const uint8_t *)p + 8 * i);
	return err;
}

/* The saved XSAVE area (no larger than this host's, no component this host lacks) and XCRs. */
static int load_fpu(const struct vm *vm, const struct snap_sec *sec, struct xvcpu *x,
		    uint64_t host_xcr0)
{
	size_t size = xsave_size(vm), len;
	const void *p;
	uint64_t bv, xcr0;
	int err = devstate_need_blob_max(sec, "xsave", size, &p, &len);

	if (err)
		return err;
	if (len < XSAVE_LEGACY)
		return devstate_bad(sec, "xsave", "shorter than 4096 bytes");
	bv = le64_get((const uint8_t *)p + XSAVE_BV_OFF);
	if (bv & ~host_xcr0)
		return devstate_bad(sec, "xsave",
				    "holds state components 0x%llx this host's KVM does not offer",
				    (unsigned long long)(bv & ~host_xcr0));
	x->xsave = calloc(1, size);
	if (!x->xsave)
		return -ENOMEM;
	memcpy(x->xsave, p, len);
	err = snap_need_u64(sec, "xcr0", UINT64_MAX, &xcr0);
	if (!err && !(xcr0 & 1))
		return devstate_bad(sec, "xcr0",
				    "without x87 state (bit 0), which XCR0 always has");
	if (!err && (xcr0 & ~host_xcr0))
		return devstate_bad(sec, "xcr0", "enables state components this host's KVM lacks");
	x->xcrs.nr_xcrs = 1;
	x->xcrs.xcrs[0] = (struct kvm_xcr){.xcr = 0, .value = xcr0};
	return err;
}

/* CPUID registers that name CPU features: every bit the state has, this host must offer. */
static const struct {
	uint32_t function, index;
	uint8_t reg; /* 0 eax .. 3 edx */
	uint32_t ignore;
	const char *what;
} feature_regs[] = {
	{1, 0, 2, 1u << 27 | 1u << 3, "1.ecx"}, /* (OSXSAVE, MONITOR follow the guest) */
	{1, 0, 3, 1u << 9, "1.edx"},		/* (APIC follows APIC_BASE) */
	{7, 0, 1, 0, "7.0.ebx"},
	{7, 0, 2, 1u << 4, "7.0.ecx"}, /* (OSPKE follows CR4) */
	{7, 0, 3, 0, "7.0.edx"},
	{7, 1, 0, 0, "7.1.eax"},
	{0xd, 0, 0, 0, "0xd.0.eax"},
	{0xd, 0, 3, 0, "0xd.0.edx"},
	{0xd, 1, 0, 0, "0xd.1.eax"},
	{0x80000001, 0, 2, 0, "0x80000001.ecx"},
	{0x80000001, 0, 3, 0, "0x80000001.edx"},
	{0x80000008, 0, 1, 0, "0x80000008.ebx"},
};

static uint32_t cpuid_reg(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx, unsigned reg)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == fn && e->index == idx) {
			const uint32_t r[4] = {e->eax, e->ebx, e->ecx, e->edx};

			return r[reg];
		}
	}
	return 0;
}

static struct kvm_cpuid2 *cpuid_alloc(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + CPUID_MAX * sizeof(c->entries[0]));

	if (c)
		c->nent = CPUID_MAX;
	return c;
}

/*
 * The saved CPUID: well formed, and no feature this vCPU (set up for this host) lacks; the
 * host's is kept in *hostp for the XSAVE layout.
 */
static int load_cpuid(const struct vcpu *v, const struct snap_sec *sec, struct xvcpu *x,
		      struct kvm_cpuid2 **hostp)
{
	struct kvm_cpuid2 *host = cpuid_alloc();
	const uint8_t *p;
	size_t len;
	int err;

	x->cpuid = cpuid_alloc();
	if (!host || !x->cpuid) {
		free(host);
		return -ENOMEM;
	}
	err = devstate_need_blob_max(sec, "cpuid", (size_t)CPUID_MAX * CPUID_ENTRY_BYTES,
				     (const void **)&p, &len);
	if (!err && (len % CPUID_ENTRY_BYTES || !len))
		err = devstate_bad(sec, "cpuid", "not a whole number of 28-byte entries");
	err = err ?: vcpu_ioctl(v, KVM_GET_CPUID2, host, "KVM_GET_CPUID2");
	if (err) {
		free(host);
		return err;
	}
	x->cpuid->nent = (uint32_t)(len / CPUID_ENTRY_BYTES);
	for (uint32_t i = 0; i < x->cpuid->nent; i++, p += CPUID_ENTRY_BYTES)
		x->cpuid->entries[i] = (struct kvm_cpuid_entry2){.function = le32_get(p),
								 .index = le32_get(p + 4),
								 .flags = le32_get(p + 8),
								 .eax = le32_get(p + 12),
								 .ebx = le32_get(p + 16),
								 .ecx = le32_get(p + 20),
								 .edx = le32_get(p + 24)};
	for (size_t i = 0; !err && i < ARRAY_SIZE(feature_regs); i++) {
		uint32_t fn = feature_regs[i].function, idx = feature_regs[i].index;
		unsigned reg = feature_regs[i].reg;
		uint32_t extra = cpuid_reg(x->cpuid, fn, idx, reg) &
				 ~cpuid_reg(host, fn, idx, reg) & ~feature_regs[i].ignore;

		if (extra) {
			log_error("snapshot: vcpu%u: the saved vCPU has CPU features this host's "
				  "KVM does not offer: CPUID %s bits 0x%08x",
				  v->id, feature_regs[i].what, extra);
			err = -EINVAL;
		}
	}
	*hostp = host;
	return err;
}

/*
 * KVM lays the XSAVE area out at the host's offsets (CPUID 0xd.N: EAX size, EBX offset): each
 * component the state uses must sit where the saving host had it (they differ between CPU
 * vendors and models), or its registers would be read from the wrong bytes.
 */
static int check_xsave_layout(const struct snap_sec *sec, const struct xvcpu *x,
			      const struct kvm_cpuid2 *host)
{
	uint64_t used = le64_get((const uint8_t *)x->xsave + XSAVE_BV_OFF) | x->xcrs.xcrs[0].value;

	for (unsigned c = 2; c < 64; c++) {
		uint32_t size = cpuid_reg(x->cpuid, 0xd, c, 0),
			 off = cpuid_reg(x->cpuid, 0xd, c, 1);
		if (!(used >> c & 1) ||
		    (size == cpuid_reg(host, 0xd, c, 0) && off == cpuid_reg(host, 0xd, c, 1)))
			continue;
		return devstate_bad(sec, "xsave",
				    "state component %u is %u bytes at offset %u; on this host %u "
				    "at %u",
				    c, size, off, cpuid_reg(host, 0xd, c, 0),
				    cpuid_reg(host, 0xd, c, 1));
	}
	return 0;
}

/* The saved MSRs: each one this host's KVM keeps; the TSC first, the deadline set apart. */
static int load_msrs(const struct snap_sec *sec, struct xvcpu *x)
{
	size_t n = snap_nfields(sec);
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));

	if (!m)
		return -ENOMEM;
	x->msrs = m;
	for (size_t k = 0; k < n; k++) {
		struct snap_field_view f;
		unsigned long idx;

		if (snap_field_at(sec, k, &f) || strncmp(f.name, "msr.", 4))
			continue;
		/* (8 lowercase hex digits exactly: one spelling per MSR, no duplicate) */
		if (strlen(f.name) != 12 || strspn(f.name + 4, "0123456789abcdef") != 8 ||
		    f.type != SNAP_U64)
			return devstate_bad(
				sec, f.name,
				"not an MSR field (msr.<8 lowercase hex digits>, a number)");
		idx = strtoul(f.name + 4, NULL, 16);
		if (!host_has_msr((uint32_t)idx))
			return devstate_bad(sec, f.name, "an MSR this host's KVM does not keep");
		if (idx == MSR_IA32_TSC_DEADLINE) {
			x->has_deadline = true;
			x->deadline = f.u64;
			continue;
		}
		m->entries[m->nmsrs] =
			(struct kvm_msr_entry){.index = (uint32_t)idx, .data = f.u64};
		if (idx == MSR_IA32_TSC) { /* first: the others may be relative to it */
			struct kvm_msr_entry t = m->entries[m->nmsrs];

			m->entries[m->nmsrs] = m->entries[0];
			m->entries[0] = t;
		}
		m->nmsrs++;
	}
	if (!m->nmsrs || m->entries[0].index != MSR_IA32_TSC)
		return devstate_bad(sec, "msr.00000010", "missing (the TSC)");
	return 0;
}

/*
 * The guest calibrated its TSC at the saved rate: the same here (within what KVM runs
 * unscaled), or scaled by KVM where the host can (KVM_CAP_TSC_CONTROL). -EINVAL said if not.
 */
static int tsc_rate(const struct vcpu *v, uint64_t khz)
{
	int host = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	uint64_t diff;

	if (host <= 0)
		return vcpu_ioctl(v, KVM_GET_TSC_KHZ, NULL, "KVM_GET_TSC_KHZ") ?: -EIO;
	diff = khz > (uint64_t)host ? khz - (uint64_t)host : (uint64_t)host - khz;
	if (diff * 1000000 <= (uint64_t)host * TSC_PPM)
		return 0;
	if (ioctl(v->vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL) > 0 &&
	    ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)khz) == 0)
		return 0;
	log_error("snapshot: vcpu%u: the saved TSC ran at %llu kHz, this host's runs at %d kHz "
		  "and its KVM cannot scale it",
		  v->id, (unsigned long long)khz, host);
	return -EINVAL;
}

static int load_vcpu(const struct rst_ctx *r, unsigned i, struct xvcpu *x)
{
	const struct vcpu *v = &r->vm->vcpus[i];
	char name[SNAP_NAME_MAX];
	const struct snap_sec *sec;
	struct kvm_cpuid2 *host = NULL;
	const void *p;
	uint64_t mp;
	int err;

	snprintf(name, sizeof(name), "vcpu%u", i);
	sec = snap_need(r->s, name);
	if (!sec)
		return -EINVAL;
	err = need_fields(sec, "", &x->regs, regs_fields, ARRAY_SIZE(regs_fields));
	err = err ?: load_sregs(sec, &x->sregs);
	err = err ?: load_cpuid(v, sec, x, &host);
	err = err ?: load_fpu(r->vm, sec, x, r->host_xcr0);
	err = err ?: check_xsave_layout(sec, x, host);
	free(host);
	err = err ?: load_msrs(sec, x);
	err = err ?: devstate_need_blob(sec, "lapic", sizeof(x->lapic.regs), &p);
	if (!err)
		memcpy(x->lapic.regs, p, sizeof(x->lapic.regs));
	err = err ?: need_fields(sec, "", &x->ev, events_fields, ARRAY_SIZE(events_fields));
	err = err ?: need_fields(sec, "", &x->dbg, debug_fields, ARRAY_SIZE(debug_fields));
	err = err ?: snap_need_u64(sec, "mp_state", KVM_MP_STATE_AP_RESET_HOLD, &mp);
	err = err ?: snap_need_u64(sec, "tsc_khz", UINT32_MAX, &x->tsc_khz);
	if (err)
		return err;
	/* What KVM would refuse with only "Invalid argument": said here with the field. */
	if (mp > KVM_MP_STATE_SIPI_RECEIVED && mp != KVM_MP_STATE_AP_RESET_HOLD)
		return devstate_bad(sec, "mp_state", "not an x86 run state");
	if ((x->dbg.dr6 | x->dbg.dr7) & DR_UPPER)
		return devstate_bad(sec, x->dbg.dr6 & DR_UPPER ? "dr6" : "dr7",
				    "reserved bits set");
	if (x->ev.exception.nr > 31)
		return devstate_bad(sec, "exception.nr", "not an exception vector (0-31)");
	if (!x->tsc_khz)
		return devstate_bad(sec, "tsc_khz", "zero");
	x->mp.mp_state = (uint32_t)mp;
	/* What KVM_SET_VCPU_EVENTS is to take: NMI pending, SIPI vector, shadow, SMM. */
	x->ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
		      KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
	return tsc_rate(v, x->tsc_khz);
}

static int load_vm(const struct rst_ctx *r, struct xstate *st)
{
	const struct snap_sec *ic = snap_need(r->s, "irqchip"), *pit = snap_need(r->s, "pit"),
			      *clk = snap_need(r->s, "clock");
	char name[SNAP_NAME_MAX];
	uint64_t flags = 0;
	int err = ic && pit && clk ? 0 : -EINVAL;

	st->chip[0].chip_id = KVM_IRQCHIP_PIC_MASTER;
	st->chip[1].chip_id = KVM_IRQCHIP_PIC_SLAVE;
	st->chip[2].chip_id = KVM_IRQCHIP_IOAPIC;
	err = err
		      ?: need_fields(ic, "pic0.", &st->chip[0].chip.pic, pic_fields,
				     ARRAY_SIZE(pic_fields));
	err = err
		      ?: need_fields(ic, "pic1.", &st->chip[1].chip.pic, pic_fields,
				     ARRAY_SIZE(pic_fields));
	err = err
		      ?: need_fields(ic, "ioapic.", &st->chip[2].chip.ioapic, ioapic_fields,
				     ARRAY_SIZE(ioapic_fields));
	for (unsigned i = 0; !err && i < KVM_IOAPIC_NUM_PINS; i++) {
		snprintf(name, sizeof(name), "ioapic.redir%u", i);
		err = snap_need_u64(ic, name, UINT64_MAX,
				    (uint64_t *)&st->chip[2].chip.ioapic.redirtbl[i].bits);
	}
	if (!err && st->chip[2].chip.ioapic.base_address != X86_IOAPIC_BASE)
		err = devstate_bad(ic, "ioapic.base_address", "not the IOAPIC's address");
	for (unsigned i = 0; !err && i < 3; i++) {
		snprintf(name, sizeof(name), "ch%u.", i);
		err = need_fields(pit, name, &st->pit.channels[i], pit_fields,
				  ARRAY_SIZE(pit_fields));
	}
	err = err ?: snap_need_u64(pit, "flags", UINT32_MAX, &flags);
	st->pit.flags = (uint32_t)flags;
	err = err ?: snap_need_u64(clk, "kvmclock", UINT64_MAX, &st->kvmclock);
	return err ?: snap_need_u64(clk, "pci_cf8", UINT32_MAX, &st->cf8);
}

/* The largest XCR0 this host's KVM offers (CPUID 0xd.0 EDX:EAX as vCPU 0 has it). */
static int host_xcr0(const struct vm *vm, uint64_t *xcr0)
{
	struct kvm_cpuid2 *c = cpuid_alloc();
	int err = c ? vcpu_ioctl(&vm->vcpus[0], KVM_GET_CPUID2, c, "KVM_GET_CPUID2") : -ENOMEM;

	if (!err)
		*xcr0 = (uint64_t)cpuid_reg(c, 0xd, 0, 3) << 32 | cpuid_reg(c, 0xd, 0, 0);
	free(c);
	return err;
}

/* KVM_SET_MSRS in batches KVM takes, the TSC (first) in the first. 0 or -EINVAL (said). */
static int set_msrs(const struct vcpu *v, const struct kvm_msrs *all)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + MSR_BATCH * sizeof(m->entries[0]));
	int err = m ? 0 : -ENOMEM;

	for (uint32_t from = 0; !err && from < all->nmsrs; from += m->nmsrs) {
		int set;

		m->nmsrs = all->nmsrs - from > MSR_BATCH ? MSR_BATCH : all->nmsrs - from;
		memcpy(m->entries, all->entries + from, m->nmsrs * sizeof(m->entries[0]));
		set = ioctl(v->fd, KVM_SET_MSRS, m);
		if (set < 0 || (uint32_t)set != m->nmsrs) {
			if (set < 0)
				log_error("snapshot: vcpu%u: KVM_SET_MSRS: %s", v->id,
					  strerror(errno));
			else
				log_error("snapshot: vcpu%u: KVM_SET_MSRS refused MSR 0x%x", v->id,
					  m->entries[set].index);
			err = -EINVAL;
		}
	}
	free(m);
	return err;
}

static int apply_vcpu(const struct vcpu *v, struct xvcpu *x)
{
	int err = vcpu_ioctl(v, KVM_SET_CPUID2, x->cpuid, "KVM_SET_CPUID2");

	err = err ?: vcpu_ioctl(v, KVM_SET_SREGS, &x->sregs, "KVM_SET_SREGS");
	err = err ?: vcpu_ioctl(v, KVM_SET_REGS, &x->regs, "KVM_SET_REGS");
	err = err ?: vcpu_ioctl(v, KVM_SET_XCRS, &x->xcrs, "KVM_SET_XCRS");
	err = err ?: vcpu_ioctl(v, KVM_SET_XSAVE, x->xsave, "KVM_SET_XSAVE");
	if (err)
		return err;
	err = set_msrs(v, x->msrs);
	if (err)
		return err;
	err = vcpu_ioctl(v, KVM_SET_MP_STATE, &x->mp, "KVM_SET_MP_STATE");
	err = err ?: vcpu_ioctl(v, KVM_SET_LAPIC, &x->lapic, "KVM_SET_LAPIC");
	if (!err && x->has_deadline) { /* after the LAPIC: KVM ignores it unless LVTT asks */
		uint64_t buf[(sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)) / 8 + 1] = {
			0};
		struct kvm_msrs *d = (struct kvm_msrs *)buf;

		d->nmsrs = 1;
		d->entries[0] =
			(struct kvm_msr_entry){.index = MSR_IA32_TSC_DEADLINE, .data = x->deadline};
		if (ioctl(v->fd, KVM_SET_MSRS, d) != 1) {
			log_error("snapshot: vcpu%u: KVM_SET_MSRS refused the TSC deadline", v->id);
			err = -EINVAL;
		}
	}
	err = err ?: vcpu_ioctl(v, KVM_SET_VCPU_EVENTS, &x->ev, "KVM_SET_VCPU_EVENTS");
	return err ?: vcpu_ioctl(v, KVM_SET_DEBUGREGS, &x->dbg, "KVM_SET_DEBUGREGS");
}

static int apply(struct vm *vm, struct xstate *st)
{
	struct kvm_clock_data c = {.clock = st->kvmclock};
	int err = 0;

	for (int i = 0; !err && i < 3; i++)
		err = vm_ioctl(vm, KVM_SET_IRQCHIP, &st->chip[i], "KVM_SET_IRQCHIP");
	err = err ?: vm_ioctl(vm, KVM_SET_PIT2, &st->pit, "KVM_SET_PIT2");
	for (unsigned i = 0; !err && i < st->n; i++)
		err = apply_vcpu(&vm->vcpus[i], &st->v[i]);
	/* Last: kvmclock resumes from where it was saved, with the TSCs in place. */
	err = err ?: vm_ioctl(vm, KVM_SET_CLOCK, &c, "KVM_SET_CLOCK");
	if (!err)
		x86_platform_cf8(vm, &(uint32_t){(uint32_t)st->cf8});
	return err;
}

static void xstate_free(struct xstate *st)
{
	for (unsigned i = 0; st->v && i < st->n; i++) {
		free(st->v[i].xsave);
		free(st->v[i].cpuid);
		free(st->v[i].msrs);
	}
	free(st->v);
}

int kvm_arch_restore(struct vm *vm, const struct snap *s)
{
	struct rst_ctx r = {.vm = vm, .s = s};
	struct xstate st = {.n = devstate_count(s, "vcpu%u")};
	int err = 0;

	if (st.n != vm->nvcpus) {
		log_error("snapshot: the state holds %u vCPUs, this machine has %u", st.n,
			  vm->nvcpus);
		return -EINVAL;
	}
	if (!host_msrs) {
		log_error("snapshot: this host's KVM gave no MSR list at start");
		return -ENOTSUP;
	}
	st.v = calloc(st.n, sizeof(*st.v));
	if (!st.v)
		return -ENOMEM;
	err = host_xcr0(vm, &r.host_xcr0);
	for (unsigned i = 0; !err && i < st.n; i++)
		err = load_vcpu(&r, i, &st.v[i]);
	err = err ?: load_vm(&r, &st); /* everything checked; KVM untouched but the TSC rate */
	err = err ?: apply(vm, &st);
	if (!err)
		log_info("snapshot: %u vCPUs, the PIC, IOAPIC and PIT restored; kvmclock resumed "
			 "at %.3f s",
			 st.n, st.kvmclock / 1e9);
	xstate_free(&st);
	return err;
}
