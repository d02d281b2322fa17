/* arm64 KVM: VM IPA size, in-kernel vGIC (v2/v3), vCPU init with PSCI, boot registers, SPIs. */
#include "kvm_arch.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch.h"
#include "arm64.h"
#include "log.h"
#include "machine.h"
#include "vm.h"

#define CORE_REG(x) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(x))

const struct arch *const kvm_guest_arch = &arch_arm64;

static struct arm64_vm *arm64_vm(const struct vm *vm)
{
	return vm->arch_priv;
}

int kvm_arch_vm_type(struct vm *vm)
{
	int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
	unsigned bits = vm->m->ipa_bits;

	if (max <= 0)
		max = 40; /* the fixed size before the capability existed */
	if (bits > (unsigned)max) {
		log_error("[machine] ipa_bits = %u, but this host's KVM supports at most %d", bits,
			  max);
		return -EINVAL;
	}
	return max > 40 || bits != 40 ? (int)KVM_VM_TYPE_ARM_IPA_SIZE(bits) : 0;
}

int kvm_arch_vm_init(struct vm *vm)
{
	struct kvm_enable_cap cap = {.cap = KVM_CAP_ARM_NISV_TO_USER};
	struct arm64_vm *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->gic_fd = a->its_fd = -1;
	vm->arch_priv = a;

	/*
	 * A load or store KVM cannot decode (no valid syndrome: ldp/stp, writeback, ...) to a
	 * device address comes back as KVM_EXIT_ARM_NISV instead of failing KVM_RUN, which
	 * would end the whole VM over one bad guest access.
	 */
	if (vm_has_cap(vm, KVM_CAP_ARM_NISV_TO_USER) && ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		log_warn("KVM_CAP_ARM_NISV_TO_USER: %s (an undecodable device access will stop "
			 "the VM)",
			 strerror(errno));
	a->ext_dabt = vm_has_cap(vm, KVM_CAP_ARM_INJECT_EXT_DABT);
	if (arm64_pmu(vm->m) && !vm_has_cap(vm, KVM_CAP_ARM_PMU_V3)) {
		log_error("[machine] pmu = on: this host's KVM cannot give guests a PMU (no "
			  "KVM_CAP_ARM_PMU_V3); set pmu = off");
		return -ENOTSUP;
	}
	return 0;
}

void kvm_arch_vm_destroy(struct vm *vm)
{
	struct arm64_vm *a = arm64_vm(vm);

	if (!a)
		return;
	if (a->its_fd >= 0)
		close(a->its_fd);
	if (a->gic_fd >= 0)
		close(a->gic_fd);
	a->its_fd = a->gic_fd = -1;
}

/* The guest made an access KVM could not decode: it gets an external data abort. */
static int nisv(struct vcpu *v)
{
	static atomic_uint warnings;
	struct kvm_vcpu_events ev;
	unsigned long long ipa = v->run->arm_nisv.fault_ipa;

	if (atomic_fetch_add(&warnings, 1) < 5)
		log_warn("vcpu%u: guest access at 0x%llx that KVM cannot decode (a load/store "
			 "pair or with writeback, ISS 0x%llx): external abort injected",
			 v->id, ipa, (unsigned long long)v->run->arm_nisv.esr_iss);
	memset(&ev, 0, sizeof(ev));
	ev.exception.ext_dabt_pending = 1;
	if (!arm64_vm(v->vm)->ext_dabt || ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0) {
		log_error("vcpu%u: cannot inject an external abort for the access at 0x%llx: %s",
			  v->id, ipa,
			  arm64_vm(v->vm)->ext_dabt ? strerror(errno) : "host KVM cannot");
		return -EINVAL;
	}
	return 1;
}

int kvm_arch_vcpu_exit(struct vcpu *v)
{
	return v->run->exit_reason == KVM_EXIT_ARM_NISV ? nisv(v) : 0;
}

int arm64_set_attr(int fd, uint32_t group, uint64_t attr, const void *val)
{
	struct kvm_device_attr a = {.group = group, .attr = attr, .addr = (uintptr_t)val};

	return ioctl(fd, KVM_SET_DEVICE_ATTR, &a) < 0 ? -errno : 0;
}

int arm64_get_attr(int fd, uint32_t group, uint64_t attr, void *val)
{
	struct kvm_device_attr a = {.group = group, .attr = attr, .addr = (uintptr_t)val};

	return ioctl(fd, KVM_GET_DEVICE_ATTR, &a) < 0 ? -errno : 0;
}

static int create_gic(struct vm *vm, uint32_t type)
{
	struct kvm_create_device cd = {.type = type};

	if (ioctl(vm->vm_fd, KVM_CREATE_DEVICE, &cd) < 0)
		return -errno;
	arm64_vm(vm)->gic_fd = cd.fd;
	return 0;
}

int kvm_arch_irqchip_create(struct vm *vm)
{
	struct gic_config *g = arm64_gic(vm->m);
	uint32_t nr_irqs = g->spis + GIC_SPI_BASE;
	int err = -ENODEV;

	if (g->version != 2) {
		err = create_gic(vm, KVM_DEV_TYPE_ARM_VGIC_V3);
		if (!err)
			g->version = 3;
	}
	if (err && g->version != 3) {
		err = create_gic(vm, KVM_DEV_TYPE_ARM_VGIC_V2);
		if (!err)
			g->version = 2;
	}
	if (err) {
		if (g->version == 2)
			log_error("[gic] version = 2: this host's KVM cannot create a GICv2 "
				  "(GIC-400) "
				  "interrupt controller (%s); the host GIC is probably GICv3 "
				  "without GICv2 compatibility: use version = 3 or auto",
				  strerror(-err));
		else if (g->version == 3)
			log_error("[gic] version = 3: this host's KVM cannot create a GICv3 (%s); "
				  "use version = 2 or auto",
				  strerror(-err));
		else
			log_error("[gic] version = auto: KVM offers neither GICv3 nor GICv2 (%s)",
				  strerror(-err));
		return err;
	}
	if (g->version == 2 && vm->m->vcpus > GICV2_MAX_CPUS) {
		log_error("[machine] vcpus = %u: the host offers only GICv2, which supports at "
			  "most %d",
			  vm->m->vcpus, GICV2_MAX_CPUS);
		return -EINVAL;
	}
	if (g->version == 2) {
		err = arm64_set_attr(arm64_vm(vm)->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
				     KVM_VGIC_V2_ADDR_TYPE_DIST, &g->dist);
		err = err
			      ?: arm64_set_attr(arm64_vm(vm)->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
						KVM_VGIC_V2_ADDR_TYPE_CPU, &g->cpuif);
	} else {
		err = arm64_set_attr(arm64_vm(vm)->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
				     KVM_VGIC_V3_ADDR_TYPE_DIST, &g->dist);
		err = err
			      ?: arm64_set_attr(arm64_vm(vm)->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
						KVM_VGIC_V3_ADDR_TYPE_REDIST, &g->redist);
	}
	if (err) {
		log_error("[gic] GICv%d region addresses rejected by KVM: %s (check alignment "
			  "against the host page size)",
			  g->version, strerror(-err));
		return err;
	}
	err = arm64_set_attr(arm64_vm(vm)->gic_fd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs);
	if (err) {
		log_error("[gic] spis = %u rejected by KVM: %s", g->spis, strerror(-err));
		return err;
	}
	log_info("GICv%d created", g->version);
	if (arm64_msi_kind(vm->m) == ARM64_MSI_ITS) {
		struct kvm_create_device cd = {.type = KVM_DEV_TYPE_ARM_VGIC_ITS};

		if (ioctl(vm->vm_fd, KVM_CREATE_DEVICE, &cd) < 0) {
			err = -errno;
			log_error("[gic] its: KVM cannot create a GICv3 ITS: %s (set [pci] msi = "
				  "off)",
				  strerror(errno));
			return err;
		}
		arm64_vm(vm)->its_fd = cd.fd;
		err = arm64_set_attr(arm64_vm(vm)->its_fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
				     KVM_VGIC_ITS_ADDR_TYPE, &g->its);
		if (err)
			log_error("[gic] its at 0x%llx rejected by KVM: %s",
				  (unsigned long long)g->its, strerror(-err));
	}
	return err;
}

int kvm_arch_vcpu_init(struct vm *vm, struct vcpu *v)
{
	struct kvm_vcpu_init init;

	memset(&init, 0, sizeof(init));
	if (ioctl(vm->vm_fd, KVM_ARM_PREFERRED_TARGET, &init) < 0) {
		log_error("KVM_ARM_PREFERRED_TARGET: %s", strerror(errno));
		return -errno;
	}
	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	if (v->id != 0)
		init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF; /* woken by PSCI CPU_ON */
	if (arm64_pmu(vm->m))
		init.features[0] |= 1u << KVM_ARM_VCPU_PMU_V3;
	if (ioctl(v->fd, KVM_ARM_VCPU_INIT, &init) < 0) {
		int err = -errno;

		log_error("vcpu%u: KVM_ARM_VCPU_INIT: %s", v->id, strerror(errno));
		return err;
	}
	return 0;
}

/* Every vCPU's PMU: its overflow interrupt, then initialised (after the vGIC is). -errno. */
static int pmu_init(struct vm *vm)
{
	int irq = GIC_PPI_BASE + ARM64_PMU_PPI;

	for (unsigned i = 0; i < vm->nvcpus; i++) {
		int fd = vm->vcpus[i].fd;
		int err =
			arm64_set_attr(fd, KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_IRQ, &irq);

		err = err
			      ?: arm64_set_attr(fd, KVM_ARM_VCPU_PMU_V3_CTRL,
						KVM_ARM_VCPU_PMU_V3_INIT, NULL);
		if (err) {
			log_error("vcpu%u: [machine] pmu = on: KVM refused the PMU: %s", i,
				  strerror(-err));
			return err;
		}
	}
	return 0;
}

int kvm_arch_irqchip_finalize(struct vm *vm)
{
	int err = arm64_set_attr(arm64_vm(vm)->gic_fd, KVM_DEV_ARM_VGIC_GRP_CTRL,
				 KVM_DEV_ARM_VGIC_CTRL_INIT, NULL);

	if (err) {
		log_error("GICv%d initialisation failed: %s", arm64_gic(vm->m)->version,
			  strerror(-err));
		return err;
	}
	if (arm64_vm(vm)->its_fd >= 0) {
		err = arm64_set_attr(arm64_vm(vm)->its_fd, KVM_DEV_ARM_VGIC_GRP_CTRL,
				     KVM_DEV_ARM_VGIC_CTRL_INIT, NULL);
		if (err)
			log_error("GICv3 ITS initialisation failed: %s", strerror(-err));
	}
	if (!err && arm64_pmu(vm->m))
		err = pmu_init(vm);
	if (!err && arm64_msi_kind(vm->m) == ARM64_MSI_V2M)
		err = gicv2m_realize(vm);
	return err;
}

unsigned kvm_arch_default_routes(struct vm *vm, struct kvm_irq_routing_entry *e, unsigned max)
{
	unsigned n = arm64_gic(vm->m)->spis < max ? arm64_gic(vm->m)->spis : max;

	for (unsigned i = 0; i < n; i++) {
		e[i] = (struct kvm_irq_routing_entry){.gsi = i, .type = KVM_IRQ_ROUTING_IRQCHIP};
		e[i].u.irqchip.irqchip = 0;
		e[i].u.irqchip.pin = i;
	}
	return n;
}

int kvm_arch_msi(struct vm *vm, uint64_t addr, uint32_t data, uint32_t devid,
		 struct kvm_irq_routing_entry *e, uint32_t *line)
{
	const struct gic_config *g = arm64_gic(vm->m);

	switch (arm64_msi_kind(vm->m)) {
	case ARM64_MSI_V2M:
		/* The frame turns a write of INTID to SETSPI into that SPI. */
		if (addr != g->v2m + GICV2M_SETSPI || data < GIC_SPI_BASE + g->v2m_irq_base ||
		    data >= GIC_SPI_BASE + g->v2m_irq_base + g->v2m_irq_count)
			return -EINVAL;
		*line = data - GIC_SPI_BASE;
		return 1;
	case ARM64_MSI_ITS:
		e->type = KVM_IRQ_ROUTING_MSI;
		e->flags = KVM_MSI_VALID_DEVID;
		e->u.msi.address_lo = (uint32_t)addr;
		e->u.msi.address_hi = (uint32_t)(addr >> 32);
		e->u.msi.data = data;
		e->u.msi.devid = devid;
		return 0;
	default:
		return -EINVAL;
	}
}

static int set_reg(struct vcpu *v, uint64_t id, uint64_t val)
{
	struct kvm_one_reg reg = {.id = id, .addr = (uintptr_t)&val};

	return ioctl(v->fd, KVM_SET_ONE_REG, &reg) < 0 ? -errno : 0;
}

int kvm_arch_vcpu_boot(struct vcpu *v, uint64_t entry, uint64_t dtb)
{
	/* PSTATE is already EL1h with DAIF masked after KVM_ARM_VCPU_INIT; x1-x3 are zero. */
	int err = set_reg(v, CORE_REG(regs.regs[0]), dtb);

	err = err ?: set_reg(v, CORE_REG(regs.pc), entry);
	if (err)
		log_error("vcpu%u: KVM_SET_ONE_REG: %s", v->id, strerror(-err));
	return err;
}

int kvm_arch_irq_line(struct vm *vm, uint32_t irq, int level)
{
	struct kvm_irq_level l = {
		.irq = KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT | (irq + GIC_SPI_BASE),
		.level = level,
	};

	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}
