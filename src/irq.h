/* irq: KVM interrupt and eventfd plumbing: ioeventfds, irqfds, interrupt lines, MSI routes. */
#ifndef MICROVM_IRQ_H
#define MICROVM_IRQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct kvm_irq_routing_entry;
struct vm;

/* One MSI source (an MSI-X vector): its message and the irqfd that delivers it. */
struct msi_route {
	int gsi;     /* GSI the irqfd is bound to, -1 when unbound */
	int msi_gsi; /* GSI of its own MSI routing entry (ITS), -1 until allocated */
	int fd;	     /* irqfd eventfd */
	uint64_t addr;
	uint32_t data;
};

/*
 * A VM's interrupt plumbing: the KVM VM it programs and its GSI routing table (KVM takes the
 * table whole, so it is kept here and handed over again).
 */
struct irq_ctl {
	struct vm *vm;			      /* for the architecture's hooks (kvm_arch.h) */
	int vm_fd;			      /* the KVM VM, -1 until it exists */
	pthread_mutex_t lock;		      /* guards the rest (taken under a device lock) */
	struct kvm_irq_routing_entry *routes; /* NULL until the first MSI needs its own entry */
	unsigned nroutes, next_msi_gsi;
};

/* Plumbing for vm (its vm_fd set once the KVM VM exists): an empty table, its lock ready. */
void irq_ctl_init(struct irq_ctl *ic, struct vm *vm);
/* Free the table and its lock. */
void irq_ctl_free(struct irq_ctl *ic);
/* Signal fd when the guest writes len bytes at addr (only value datamatch, if match). -errno. */
int irq_ioeventfd(struct irq_ctl *ic, uint64_t addr, uint32_t len, bool match, uint64_t datamatch,
		  int fd, bool assign);
/* Inject an edge on GSI gsi (device line n is GSI n) whenever fd is signalled. -errno. */
int irq_fd(struct irq_ctl *ic, uint32_t gsi, int fd, bool assign);
/* Level interrupt on line irq through fd; resamplefd is signalled at each guest EOI. -errno. */
int irq_fd_resample(struct irq_ctl *ic, uint32_t irq, int fd, int resamplefd, bool assign);
/* Route MSI message (addr, data) from PCI requester devid to r->fd. -EINVAL if no MSI target. */
int irq_msi_route(struct irq_ctl *ic, struct msi_route *r, uint64_t addr, uint32_t data,
		  uint32_t devid);
/* Detach r's irqfd. */
void irq_msi_unroute(struct irq_ctl *ic, struct msi_route *r);
/* Drive device interrupt line irq to level (0/1). */
void irq_line(struct irq_ctl *ic, uint32_t irq, int level);

#endif
