/* kvm_none: the KVM hooks for hosts whose KVM runs neither guest architecture of this build. */
#include "kvm_arch.h"

#include <errno.h>

const struct arch *const kvm_guest_arch;

int kvm_arch_vm_type(struct vm *vm)
{
	(void)vm;
	return -ENOTSUP;
}

int kvm_arch_vm_init(struct vm *vm)
{
	(void)vm;
	return -ENOTSUP;
}

void kvm_arch_vm_destroy(struct vm *vm)
{
	(void)vm;
}

int kvm_arch_vcpu_exit(struct vcpu *v)
{
	(void)v;
	return 0;
}

int kvm_arch_irqchip_create(struct vm *vm)
{
	(void)vm;
	return -ENOTSUP;
}

int kvm_arch_vcpu_init(struct vm *vm, struct vcpu *v)
{
	(void)vm;
	(void)v;
	return -ENOTSUP;
}

int kvm_arch_irqchip_finalize(struct vm *vm)
{
	(void)vm;
	return -ENOTSUP;
}

int kvm_arch_vcpu_boot(struct vcpu *v, uint64_t entry, uint64_t dtb)
{
	(void)v;
	(void)entry;
	(void)dtb;
	return -ENOTSUP;
}

int kvm_arch_irq_line(struct vm *vm, uint32_t irq, int level)
{
	(void)vm;
	(void)irq;
	(void)level;
	return -ENOTSUP;
}

unsigned kvm_arch_default_routes(struct vm *vm, struct kvm_irq_routing_entry *e, unsigned max)
{
	(void)vm;
	(void)e;
	(void)max;
	return 0;
}

int kvm_arch_msi(struct vm *vm, uint64_t addr, uint32_t data, uint32_t devid,
		 struct kvm_irq_routing_entry *e, uint32_t *line)
{
	(void)vm;
	(void)addr;
	(void)data;
	(void)devid;
	(void)e;
	(void)line;
	return -EINVAL;
}

int kvm_arch_save(struct vm *vm, struct snap *s)
{
	(void)vm;
	(void)s;
	return -ENOTSUP;
}

int kvm_arch_restore(struct vm *vm, const struct snap *s)
{
	(void)vm;
	(void)s;
	return -ENOTSUP;
}
