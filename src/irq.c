/* irq: KVM interrupt and eventfd plumbing: ioeventfds, irqfds, interrupt lines, MSI routes. */
#include "irq.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm_arch.h"
#include "log.h"

void irq_ctl_init(struct irq_ctl *ic, struct vm *vm)
{
	memset(ic, 0, sizeof(*ic));
	ic->vm = vm;
	ic->vm_fd = -1;
	pthread_mutex_init(&ic->lock, NULL);
}

void irq_ctl_free(struct irq_ctl *ic)
{
	free(ic->routes);
	ic->routes = NULL;
	pthread_mutex_destroy(&ic->lock);
}

int irq_ioeventfd(struct irq_ctl *ic, uint64_t addr, uint32_t len, bool match, uint64_t datamatch,
		  int fd, bool assign)
{
	struct kvm_ioeventfd io = {
		.datamatch = datamatch,
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = (match ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(ic->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

int irq_fd(struct irq_ctl *ic, uint32_t gsi, int fd, bool assign)
{
	struct kvm_irqfd req = {
		.fd = fd,
		.gsi = gsi, /* arm64: the default routing maps GSI n to SPI n */
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return ioctl(ic->vm_fd, KVM_IRQFD, &req) < 0 ? -errno : 0;
}

int irq_fd_resample(struct irq_ctl *ic, uint32_t irq, int fd, int resamplefd, bool assign)
{
	struct kvm_irqfd req = {
		.fd = fd,
		.gsi = irq,
		.flags = assign ? KVM_IRQFD_FLAG_RESAMPLE : KVM_IRQFD_FLAG_DEASSIGN,
		.resamplefd = resamplefd,
	};

	return ioctl(ic->vm_fd, KVM_IRQFD, &req) < 0 ? -errno : 0;
}

/* Hand the whole routing table to KVM (its lock held). */
static int commit_routes(struct irq_ctl *ic)
{
	struct kvm_irq_routing *r =
		calloc(1, sizeof(*r) + ic->nroutes * sizeof(struct kvm_irq_routing_entry));
	int err = 0;

	if (!r)
		return -ENOMEM;
	r->nr = ic->nroutes;
	memcpy(r->entries, ic->routes, ic->nroutes * sizeof(struct kvm_irq_routing_entry));
	if (ioctl(ic->vm_fd, KVM_SET_GSI_ROUTING, r) < 0)
		err = -errno;
	free(r);
	return err;
}

int irq_msi_route(struct irq_ctl *ic, struct msi_route *r, uint64_t addr, uint32_t data,
		  uint32_t devid)
{
	struct kvm_irq_routing_entry e = {0};
	uint32_t line = 0;
	int kind, gsi, err = 0;

	kind = kvm_arch_msi(ic->vm, addr, data, devid, &e, &line);
	if (kind < 0)
		return kind;
	pthread_mutex_lock(&ic->lock);
	if (kind == 1) {
		gsi = line; /* a device line: the default route already reaches it */
	} else {
		unsigned i;

		if (!ic->routes) {
			unsigned max = 1024 + 2048;

			ic->routes = calloc(max, sizeof(*ic->routes));
			if (!ic->routes) {
				pthread_mutex_unlock(&ic->lock);
				return -ENOMEM;
			}
			ic->nroutes = kvm_arch_default_routes(ic->vm, ic->routes, 1024);
			ic->next_msi_gsi = 1024;
		}
		if (r->msi_gsi < 0) {
			if (ic->next_msi_gsi >= 1024 + 2048) {
				pthread_mutex_unlock(&ic->lock);
				return -ENOSPC;
			}
			r->msi_gsi = ic->next_msi_gsi++;
		}
		gsi = r->msi_gsi;
		e.gsi = gsi;
		for (i = 0; i < ic->nroutes && ic->routes[i].gsi != (uint32_t)gsi; i++)
			;
		ic->routes[i] = e;
		if (i == ic->nroutes)
			ic->nroutes++;
		err = commit_routes(ic);
	}
	pthread_mutex_unlock(&ic->lock);
	if (err)
		return err;
	if (r->gsi != gsi) {
		if (r->gsi >= 0)
			irq_fd(ic, r->gsi, r->fd, false);
		r->gsi = -1;
		err = irq_fd(ic, gsi, r->fd, true);
		if (err)
			return err;
		r->gsi = gsi;
	}
	r->addr = addr;
	r->data = data;
	return 0;
}

void irq_msi_unroute(struct irq_ctl *ic, struct msi_route *r)
{
	if (r->gsi >= 0)
		irq_fd(ic, r->gsi, r->fd, false);
	r->gsi = -1;
}

void irq_line(struct irq_ctl *ic, uint32_t irq, int level)
{
	int err = kvm_arch_irq_line(ic->vm, irq, level);

	if (err)
		log_warn("irq %u: KVM_IRQ_LINE failed: %s", irq, strerror(-err));
}
