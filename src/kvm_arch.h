/* kvm_arch: the host-architecture KVM hooks behind vm.c (one implementation per host arch). */
#ifndef MICROVM_KVM_ARCH_H
#define MICROVM_KVM_ARCH_H

#include <stdint.h>

struct arch;
struct kvm_irq_routing_entry;
struct snap;
struct vm;
struct vcpu;

/* The guest architecture this host's KVM runs; NULL when this build runs none here. */
extern const struct arch *const kvm_guest_arch;

/* KVM_CREATE_VM type for the machine (IPA size); -errno when the host cannot provide it. */
int kvm_arch_vm_type(struct vm *vm);
/* Right after KVM_CREATE_VM: enable the VM capabilities microvm relies on. -errno. */
int kvm_arch_vm_init(struct vm *vm);
/* Release what the hooks created, before the VM's own descriptors close (any time). */
void kvm_arch_vm_destroy(struct vm *vm);
/*
 * An exit reason vm.c does not handle itself: 1 handled (the vCPU runs on), 0 not one of
 * this architecture's, -errno when the VM cannot go on.
 */
int kvm_arch_vcpu_exit(struct vcpu *v);
/* Create the in-kernel interrupt controller and place its regions (resolves version=auto). */
int kvm_arch_irqchip_create(struct vm *vm);
/* Initialise a freshly created vCPU (secondaries start powered off). */
int kvm_arch_vcpu_init(struct vm *vm, struct vcpu *v);
/* Finish interrupt controller set-up once every vCPU exists. */
int kvm_arch_irqchip_finalize(struct vm *vm);
/* Set the boot vCPU's registers to enter the kernel with the DTB address. */
int kvm_arch_vcpu_boot(struct vcpu *v, uint64_t entry, uint64_t dtb);
/* Fill the default GSI routes (GSI n -> device line n); returns how many (at most max). */
unsigned kvm_arch_default_routes(struct vm *vm, struct kvm_irq_routing_entry *e, unsigned max);
/*
 * Translate an MSI message: returns 1 with *line set when it targets an emulated frame that
 * raises a device line (GICv2m), 0 with e filled for an in-kernel MSI controller (ITS), or
 * -EINVAL when the address is no MSI doorbell.
 */
int kvm_arch_msi(struct vm *vm, uint64_t addr, uint32_t data, uint32_t devid,
		 struct kvm_irq_routing_entry *e, uint32_t *line);
/*
 * Snapshot (VM paused, every vCPU parked): save each vCPU's registers and state and the
 * interrupt controller's (on arm64 this first has KVM write the GICv3 ITS and pending tables
 * into guest RAM, so it comes before RAM is saved). Sections "cpu", "vcpuN", "gic"... 0 or
 * -errno (said).
 */
int kvm_arch_save(struct vm *vm, struct snap *s);
/*
 * Restore what kvm_arch_save wrote into a VM just built from the snapshot's machine (vCPUs
 * created, irqchip initialised, devices realized, RAM mapped), before any vCPU runs. Refuses
 * (said, -EINVAL/-ENOTSUP) a state this host's KVM cannot take back. 0 or -errno.
 */
int kvm_arch_restore(struct vm *vm, const struct snap *s);
/* Drive device interrupt line irq to level. */
int kvm_arch_irq_line(struct vm *vm, uint32_t irq, int level);

#endif
