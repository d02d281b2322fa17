/* vm: the KVM virtual machine: guest RAM, vCPU threads, MMIO bus, event loop, shutdown. */
#ifndef MICROVM_VM_H
#define MICROVM_VM_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "irq.h"
#include "loop.h"
#include "mem.h"

struct boot_images;
struct boot_info;
struct machine;
struct pci_host;

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
	int kvm_fd, vm_fd;
	uint8_t *ram;
	void *ram_resv; /* RAM and its guard regions (PROT_NONE) */
	size_t ram_resv_size;
	uint64_t ram_base, ram_size;
	struct guest_mem mem; /* the same RAM, for checked translation */
	struct bus bus;
	struct bus pio;	 /* I/O ports (x86) */
	void *arch_priv; /* the arch's state: arm64 kvm_arch_vm_init, x86 arch->realize */
	struct loop loop;
	struct vcpu *vcpus;
	unsigned nvcpus;
	size_t run_size;
	int stop_fd;	   /* eventfd: a vCPU asks the main thread to stop */
	atomic_int status; /* -1 while running, else enum vm_status */
	atomic_bool ran;   /* first KVM_RUN has been issued */
	atomic_uint mmio_warnings;
	atomic_ulong exits, mmio_exits; /* returns from KVM_RUN to microvm (for --verbose) */
	struct pci_host *pci;		/* the ECAM host bridge, when the machine has [pci] */
	struct irq_ctl irq;		/* ioeventfds, irqfds, lines, MSI routes (irq.c) */
	/*
	 * Pause (vm_pause, vm_resume: the main thread only). A vCPU parks on pause_cond once
	 * KVM_RUN returned EINTR while pause_req is set, until it is cleared or the VM stops.
	 */
	pthread_mutex_t pause_lock; /* guards parked, vcpus_out; pause_req changes under it */
	pthread_cond_t pause_cond;  /* a vCPU parked or ended; the pause ended; the VM stops */
	atomic_bool pause_req;	    /* vCPUs must park */
	unsigned parked;	    /* vCPU threads waiting on pause_cond */
	unsigned vcpus_out;	    /* vCPU threads that have ended */
	atomic_bool paused;	    /* vm_pause succeeded, vm_resume not yet called */
	uint64_t last_pause_ns;	    /* how long the last vm_pause took (to quiescence) */
	uint64_t last_resume_ns;    /* how long the last vm_resume took */
	bool ram_from_file;	    /* RAM maps a snapshot's memory file (copy-on-write) */
	unsigned nslots;	    /* KVM memory slots in use (RAM's first) */
};

/* Whether this host's KVM runs the machine's guest architecture: 0, or -ENOTSUP (said). */
int vm_host_check(const struct machine *m);
/* Create the VM: RAM, irqchip, vCPUs, irqchip initialisation, devices, in that order. -errno. */
int vm_create(struct vm *vm, struct machine *m);
/*
 * The same for a restore: guest RAM maps mem_fd (a snapshot's memory file, at least RAM-sized)
 * privately, so pages are read in when first touched and the guest's writes stay in this
 * process. The caller then restores the state instead of vm_load. -errno.
 */
int vm_create_restored(struct vm *vm, struct machine *m, int mem_fd);
/*
 * Before vm_run, on a VM that is ready: start it paused (devices paused, vCPUs park before
 * their first KVM_RUN) until vm_resume.
 */
void vm_start_paused(struct vm *vm);
/* Load kernel, initrd and boot information into guest RAM, aim the boot vCPU at the kernel. */
int vm_load(struct vm *vm, const struct boot_images *bi, const struct boot_info *info);
/* Run until the guest or the host stops the VM; returns an enum vm_status. */
int vm_run(struct vm *vm);
/* Tear everything down in reverse order of creation. */
void vm_destroy(struct vm *vm);
/* Ask the VM to stop with status (first caller wins); safe from any thread. */
void vm_stop(struct vm *vm, int status);
/*
 * Pause the running VM (main thread, from the event loop): returns once every vCPU is out
 * of KVM_RUN and parked and every device has stopped its queues with its host I/O finished
 * and written back; from then until vm_resume microvm writes no guest memory. The guest's
 * clock keeps running. 0 (also when already paused), -ESHUTDOWN when the VM is stopping,
 * or a device's -errno (the VM then runs on). Sets last_pause_ns.
 */
int vm_pause(struct vm *vm);
/* Resume a paused VM: devices serve every queue again, vCPUs re-enter KVM_RUN. 0. */
int vm_resume(struct vm *vm);
/* Is the VM paused (between a successful vm_pause and vm_resume)? Any thread. */
bool vm_paused(const struct vm *vm);
/* Give the guest size bytes of host memory hva at gpa (a memory slot of its own). -errno. */
int vm_map_memory(struct vm *vm, uint64_t gpa, void *hva, uint64_t size);
/* Does the host's KVM have capability cap? */
bool vm_has_cap(struct vm *vm, long cap);

#endif
