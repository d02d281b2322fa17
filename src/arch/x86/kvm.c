/*
 * x86-64 KVM: in-kernel irqchip (LAPIC, IOAPIC, PIC) and PIT, CPUID with per-vCPU APIC IDs,
 * LAPIC LINT0/LINT1 wired as ExtINT/NMI, the 64-bit boot state, port I/O exits.
 */
#include "kvm_arch.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch.h"
#include "log.h"
#include "machine.h"
#include "vm.h"
#include "x86.h"

#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE    0x2ff
#define APIC_LVT_LINT0	     0x350
#define APIC_LVT_LINT1	     0x360
#define APIC_MODE_NMI	     0x4
#define APIC_MODE_EXTINT     0x7
#define CPUID_MAX_ENTRIES    256

const struct arch *const kvm_guest_arch = &arch_x86_64;

int kvm_arch_vm_type(struct vm *vm)
{
	(void)vm;
	return 0;
}

int kvm_arch_vm_init(struct vm *vm)
{
	uint64_t map = X86_KVM_IDMAP_ADDR;

	/* Intel VMX needs these four pages below 4 GiB; AMD ignores them. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)X86_KVM_TSS_ADDR) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &map) < 0) {
		int err = -errno;

		log_error("KVM_SET_TSS_ADDR: %s", strerror(errno));
		return err;
	}
	/* (the MSR list snapshots use, while /dev/kvm may still be asked) */
	if (x86_snap_init(vm) < 0)
		log_warn("KVM_GET_MSR_INDEX_LIST failed: this VM cannot be saved");
	return 0;
}

/* Copy count port accesses between the guest and the I/O port bus. */
static int port_io(struct vcpu *v)
{
	static atomic_uint warnings;
	struct kvm_run *run = v->run;
	uint32_t size = run->io.size, count = run->io.count;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	if ((size != 1 && size != 2 && size != 4) || run->io.data_offset > v->vm->run_size ||
	    (uint64_t)size * count > v->vm->run_size - run->io.data_offset)
		return 1;
	for (uint32_t i = 0; i < count; i++, data += size) {
		if (bus_access(&v->vm->pio, run->io.port, data, size, write))
			continue;
		/* No device: reads float high, as on a real bus; writes are dropped. */
		if (!write)
			memset(data, 0xff, size);
		if (atomic_fetch_add(&warnings, 1) < 10)
			log_info("vcpu%u: %u-byte %s of unused I/O port 0x%x", v->id, size,
				 write ? "write" : "read", run->io.port);
	}
	return 1;
}

void kvm_arch_vm_destroy(struct vm *vm)
{
	(void)vm; /* the platform state (vm->arch_priv) is plain memory, freed by vm.c */
}

int kvm_arch_vcpu_exit(struct vcpu *v)
{
	switch (v->run->exit_reason) {
	case KVM_EXIT_IO:
		return port_io(v);
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault: what a PC does is reset. */
		log_info("vcpu%u: triple fault (shutdown): the guest resets", v->id);
		vm_stop(v->vm, VM_REBOOT);
		return 1;
	case KVM_EXIT_HLT:
		return 1;
	default:
		return 0;
	}
}

int kvm_arch_irqchip_create(struct vm *vm)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};

	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		int err = -errno;

		log_error("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return err;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		int err = -errno;

		log_error("KVM_CREATE_PIT2: %s", strerror(errno));
		return err;
	}
	log_info("in-kernel LAPIC, IOAPIC, PIC and PIT created");
	return 0;
}

/* The host's CPUID, as this vCPU should see it: its APIC ID and the hypervisor bit. */
static int set_cpuid(struct vm *vm, struct vcpu *v)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));
	int err = 0;

	if (!c)
		return -ENOMEM;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		err = -errno;
		log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		goto out;
	}
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffff) | v->id << 24 |
				 (vm->nvcpus > 255 ? 255 : vm->nvcpus) << 16;
			e->ecx |= 1u << 31; /* running under a hypervisor */
			break;
		case 0xb:
		case 0x1f:
			e->edx = v->id; /* x2APIC ID */
			break;
		case 0x8000001e:
			e->eax = v->id; /* extended APIC ID (AMD) */
			break;
		}
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
		err = -errno;
		log_error("vcpu%u: KVM_SET_CPUID2: %s", v->id, strerror(errno));
	}
out:
	free(c);
	return err;
}

static int set_msrs(struct vcpu *v)
{
	static const struct kvm_msr_entry e[] = {
		{.index = MSR_IA32_MISC_ENABLE, .data = 1},	    /* fast strings */
		{.index = MSR_MTRR_DEF_TYPE, .data = 1u << 11 | 6}, /* MTRRs on, WB */
	};
	uint64_t buf[(sizeof(struct kvm_msrs) + sizeof(e)) / 8 + 1] = {0};
	struct kvm_msrs *m = (struct kvm_msrs *)buf;

	m->nmsrs = 2;
	memcpy(m->entries, e, sizeof(e));
	if (ioctl(v->fd, KVM_SET_MSRS, m) != 2) {
		log_error("vcpu%u: KVM_SET_MSRS failed", v->id);
		return -EINVAL;
	}
	return 0;
}

/* LINT0 takes the PIC's ExtINT, LINT1 NMIs: the "virtual wire" the kernel sets up first. */
static int set_lint(struct vcpu *v)
{
	struct kvm_lapic_state l;
	uint32_t r;

	if (ioctl(v->fd, KVM_GET_LAPIC, &l) < 0)
		return -errno;
	memcpy(&r, l.regs + APIC_LVT_LINT0, 4);
	r = (r & ~0x700u) | APIC_MODE_EXTINT << 8;
	memcpy(l.regs + APIC_LVT_LINT0, &r, 4);
	memcpy(&r, l.regs + APIC_LVT_LINT1, 4);
	r = (r & ~0x700u) | APIC_MODE_NMI << 8;
	memcpy(l.regs + APIC_LVT_LINT1, &r, 4);
	return ioctl(v->fd, KVM_SET_LAPIC, &l) < 0 ? -errno : 0;
}

int kvm_arch_vcpu_init(struct vm *vm, struct vcpu *v)
{
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
	int err = set_cpuid(vm, v);

	err = err ?: set_msrs(v);
	if (!err && (err = set_lint(v)))
		log_error("vcpu%u: LAPIC LINT0/LINT1: %s", v->id, strerror(-err));
	if (!err && ioctl(v->fd, KVM_SET_FPU, &fpu) < 0) {
		err = -errno;
		log_error("vcpu%u: KVM_SET_FPU: %s", v->id, strerror(errno));
	}
	/* Every vCPU but the first waits for the guest's INIT/SIPI in the in-kernel LAPIC. */
	return err;
}

int kvm_arch_irqchip_finalize(struct vm *vm)
{
	(void)vm;
	return 0;
}

static struct kvm_segment segment(uint16_t sel, uint8_t type, bool code)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = type,
		.present = 1,
		.s = 1,
		.l = code,
		.db = !code,
		.g = 1,
	};
}

int kvm_arch_vcpu_boot(struct vcpu *v, uint64_t entry, uint64_t boot_params)
{
	struct kvm_sregs s;
	struct kvm_regs r = {.rip = entry,
			     .rsi = boot_params,
			     .rflags = 2,
			     .rsp = X86_BOOT_STACK,
			     .rbp = X86_BOOT_STACK};

	if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		goto fail;
	/* Long mode with paging on the identity map microvm built; caches enabled. */
	s.cs = segment(X86_SEL_CODE, 0xb, true);
	s.ds = s.es = s.fs = s.gs = s.ss = segment(X86_SEL_DATA, 0x3, false);
	s.tr = (struct kvm_segment){.limit = 0xffff, .type = 0xb, .present = 1};
	s.gdt.base = X86_GDT_ADDR;
	s.gdt.limit = 4 * 8 - 1;
	s.idt.base = X86_IDT_ADDR;
	s.idt.limit = 7;
	s.cr0 = 0x80000011; /* PG, ET, PE */
	s.cr3 = X86_PML4_ADDR;
	s.cr4 = 0x20;	/* PAE */
	s.efer = 0x500; /* LMA, LME */
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0 || ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		goto fail;
	return 0;
fail:
	log_error("vcpu%u: setting the 64-bit boot state: %s", v->id, strerror(errno));
	return -errno;
}

unsigned kvm_arch_default_routes(struct vm *vm, struct kvm_irq_routing_entry *e, unsigned max)
{
	unsigned n = 0;

	(void)vm;
	/* As KVM's own default: ISA lines reach the PIC and the IOAPIC, the rest the IOAPIC. */
	for (unsigned gsi = 0; gsi < X86_IOAPIC_PINS && n + 2 <= max; gsi++) {
		if (gsi < 16) {
			e[n] = (struct kvm_irq_routing_entry){.gsi = gsi,
							      .type = KVM_IRQ_ROUTING_IRQCHIP};
			e[n].u.irqchip.irqchip =
				gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
			e[n++].u.irqchip.pin = gsi % 8;
		}
		e[n] = (struct kvm_irq_routing_entry){.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP};
		e[n].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		e[n++].u.irqchip.pin = gsi;
	}
	return n;
}

int kvm_arch_msi(struct vm *vm, uint64_t addr, uint32_t data, uint32_t devid,
		 struct kvm_irq_routing_entry *e, uint32_t *line)
{
	(void)vm;
	(void)devid;
	(void)line;
	/* Every MSI goes to the LAPICs' window; KVM decodes destination and vector. */
	if ((addr & 0xfff00000u) != X86_LAPIC_BASE || addr >> 32)
		return -EINVAL;
	e->type = KVM_IRQ_ROUTING_MSI;
	e->flags = 0;
	e->u.msi.address_lo = (uint32_t)addr;
	e->u.msi.address_hi = 0;
	e->u.msi.data = data;
	return 0;
}

int kvm_arch_irq_line(struct vm *vm, uint32_t irq, int level)
{
	struct kvm_irq_level l = {.irq = irq, .level = level};

	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}
