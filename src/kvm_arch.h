/* kvm_arch: the host-architecture KVM hooks behind vm.c (one implementation per host arch). */
#ifndef MICROVM_KVM_ARCH_H
#define MICROVM_KVM_ARCH_H

#include <stdint.h>

struct vm;
struct vcpu;

/* KVM_CREATE_VM type for the machine (IPA size); -errno when the host cannot provide it. */
int kvm_arch_vm_type(struct vm *vm);
/* Create the in-kernel interrupt controller and place its regions (resolves version=auto). */
int kvm_arch_irqchip_create(struct vm *vm);
/* Initialise a freshly created vCPU (secondaries start powered off). */
int kvm_arch_vcpu_init(struct vm *vm, struct vcpu *v);
/* Finish interrupt controller set-up once every vCPU exists. */
int kvm_arch_irqchip_finalize(struct vm *vm);
/* Set the boot vCPU's registers to enter the kernel with the DTB address. */
int kvm_arch_vcpu_boot(struct vcpu *v, uint64_t entry, uint64_t dtb);
/* Drive device interrupt line irq to level. */
int kvm_arch_irq_line(struct vm *vm, uint32_t irq, int level);

#endif
