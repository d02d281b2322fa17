/* irq: KVM interrupt and eventfd plumbing: ioeventfds, irqfds, interrupt lines, MSI routes. */
#include "irq.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm_arch.h"
#include "log.h"
#include "vm.h"

void irq_routing_init(struct irq_routing *rt)
{
	memset(rt, 0, sizeof(*rt));
	pthread_mutex_init(&rt->lock, NULL);
}

void irq_routing_free(struct irq_routing *rt)
{
	free(rt->routes);
	rt->routes = NULL;
	pthread_mutex_destroy(&rt->lock);
}

int irq_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, bool match, uint64_t datamatch,
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

	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

int irq_fd(struct vm *vm, uint32_t gsi, int fd, bool assign)
{
	struct kvm_irqfd req = {
		.fd = fd,
		.gsi = gsi, /* arm64: the default routing maps GSI n to SPI n */
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return ioctl(vm->vm_fd, KVM_IRQFD, &req) < 0 ? -errno : 0;
}

int irq_fd_resample(struct vm *vm, uint32_t irq, int fd, int resamplefd, bool assign)
{
	struct kvm_irqfd req = {
		.fd = fd,
		.gsi = irq,
		.flags = assign ? KVM_IRQFD_FLAG_RESAMPLE : KVM_IRQFD_FLAG_DEASSIGN,
		.resamplefd = resamplefd,
	};

	return ioctl(vm->vm_fd, KVM_IRQFD, &req) < 0 ? -errno : 0;
}

/* Hand the whole routing table to KVM (its lock held). */
static int commit_routes(struct vm *vm)
{
	struct irq_routing *rt = &vm->routing;
	struct kvm_irq_routing *r =
		calloc(1, sizeof(*r) + rt->nroutes * sizeof(struct kvm_irq_routing_entry));
	int err = 0;

	if (!r)
		return -ENOMEM;
	r->nr = rt->nroutes;
	memcpy(r->entries, rt->routes, rt->nroutes * sizeof(struct kvm_irq_routing_entry));
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, r) < 0)
		err = -errno;
	free(r);
	return err;
}

int irq_msi_route(struct vm *vm, struct msi_route *r, uint64_t addr, uint32_t data, uint32_t devid)
{
	struct irq_routing *rt = &vm->routing;
	struct kvm_irq_routing_entry e = {0};
	uint32_t line = 0;
	int kind, gsi, err = 0;

	kind = kvm_arch_msi(vm, addr, data, devid, &e, &line);
	if (kind < 0)
		return kind;
	pthread_mutex_lock(&rt->lock);
	if (kind == 1) {
		gsi = line; /* a device line: the default route already reaches it */
	} else {
		unsigned i;

		if (!rt->routes) {
			unsigned max = 1024 + 2048;

			rt->routes = calloc(max, sizeof(*rt->routes));
			if (!rt->routes) {
				pthread_mutex_unlock(&rt->lock);
				return -ENOMEM;
			}
			rt->nroutes = kvm_arch_default_routes(vm, rt->routes, 1024);
			rt->next_msi_gsi = 1024;
		}
		if (r->msi_gsi < 0) {
			if (rt->next_msi_gsi >= 1024 + 2048) {
				pthread_mutex_unlock(&rt->lock);
				return -ENOSPC;
			}
			r->msi_gsi = rt->next_msi_gsi++;
		}
		gsi = r->msi_gsi;
		e.gsi = gsi;
		for (i = 0; i < rt->nroutes && rt->routes[i].gsi != (uint32_t)gsi; i++)
			;
		rt->routes[i] = e;
		if (i == rt->nroutes)
			rt->nroutes++;
		err = commit_routes(vm);
	}
	pthread_mutex_unlock(&rt->lock);
	if (err)
		return err;
	if (r->gsi != gsi) {
		if (r->gsi >= 0)
			irq_fd(vm, r->gsi, r->fd, false);
		r->gsi = -1;
		err = irq_fd(vm, gsi, r->fd, true);
		if (err)
			return err;
		r->gsi = gsi;
	}
	r->addr = addr;
	r->data = data;
	return 0;
}

void irq_msi_unroute(struct vm *vm, struct msi_route *r)
{
	if (r->gsi >= 0)
		irq_fd(vm, r->gsi, r->fd, false);
	r->gsi = -1;
}

void irq_line(struct vm *vm, uint32_t irq, int level)
{
	int err = kvm_arch_irq_line(vm, irq, level);

	if (err)
		log_warn("irq %u: KVM_IRQ_LINE failed: %s", irq, strerror(-err));
}
