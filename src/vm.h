/* vm: the KVM virtual machine: guest RAM, vCPU threads, MMIO bus, event loop, shutdown. */
#ifndef MICROVM_VM_H
#define MICROVM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "loop.h"
#include "mem.h"

struct boot_images;
struct machine;

/* Process exit statuses (documented in README and docs/config.md). */
enum vm_status {
	VM_POWEROFF = 0, /* guest powered off (PSCI SYSTEM_OFF) */
	VM_FAILURE = 1,	 /* run-time failure */
	VM_USAGE = 2,	 /* usage or configuration error (before anything starts) */
	VM_REBOOT = 3,	 /* guest asked to reboot (PSCI SYSTEM_RESET) with on_reboot = exit */
	VM_STOPPED = 4,	 /* stopped from the host: signal or console escape */
};

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
};

struct vm {
	struct machine *m;
	int kvm_fd, vm_fd, irqchip_fd;
	uint8_t *ram;
	uint64_t ram_base, ram_size;
	struct guest_mem mem; /* the same RAM, for checked translation */
	struct bus bus;
	struct loop loop;
	struct vcpu *vcpus;
	unsigned nvcpus;
	size_t run_size;
	int stop_fd;	   /* eventfd: a vCPU asks the main thread to stop */
	atomic_int status; /* -1 while running, else enum vm_status */
	atomic_bool ran;   /* first KVM_RUN has been issued */
	atomic_uint mmio_warnings;
};

/* Create the VM: RAM, irqchip, vCPUs, irqchip initialisation, devices, in that order. -errno. */
int vm_create(struct vm *vm, struct machine *m);
/* Copy kernel, initrd and dtb into guest RAM and point the boot vCPU at the kernel. -errno. */
int vm_load(struct vm *vm, const struct boot_images *bi, const void *dtb, size_t dtb_len);
/* Run until the guest or the host stops the VM; returns an enum vm_status. */
int vm_run(struct vm *vm);
/* Tear everything down in reverse order of creation. */
void vm_destroy(struct vm *vm);
/* Ask the VM to stop with status (first caller wins); safe from any thread. */
void vm_stop(struct vm *vm, int status);
/* Host pointer for guest physical [gpa, gpa+len) if it lies wholly in RAM, else NULL. */
void *gpa_to_hva(const struct vm *vm, uint64_t gpa, uint64_t len);
/* Signal fd when the guest writes datamatch (len bytes) at addr; assign or remove. -errno. */
int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, uint64_t datamatch, int fd,
		 bool assign);
/* Inject an edge on device interrupt line irq whenever fd is signalled. -errno. */
int vm_irqfd(struct vm *vm, uint32_t irq, int fd, bool assign);
/* Drive device interrupt line irq to level (0/1). */
void vm_irq_line(struct vm *vm, uint32_t irq, int level);
/* Seconds since process start (for verbose phase timing). */
double vm_clock(void);

#endif
