/* vm: the KVM virtual machine: guest RAM, vCPU threads, MMIO bus, event loop, shutdown. */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "boot.h"
#include "device.h"
#include "arch.h"
#include "kick.h"
#include "kvm_arch.h"
#include "log.h"
#include "machine.h"
#include "pci/pci.h"
#include "sandbox.h"
#include "timeline.h"

bool vm_has_cap(struct vm *vm, long cap)
{
	return ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, cap) > 0;
}

void vm_stop(struct vm *vm, int status)
{
	int running = -1;
	uint64_t one = 1;

	if (atomic_compare_exchange_strong(&vm->status, &running, status))
		if (write(vm->stop_fd, &one, sizeof(one)) < 0)
			log_warn("stop eventfd: %s", strerror(errno));
}

int vm_host_check(const struct machine *m)
{
	if (m->arch == kvm_guest_arch)
		return 0;
	if (kvm_guest_arch)
		log_error("%s is an %s machine, and this host's KVM runs %s guests (use --check "
			  "here, or the emulated hosts: make run)",
			  m->cfg.path, m->arch->name, kvm_guest_arch->name);
	else
		log_error("%s is an %s machine, and this build runs no guests on this host (use "
			  "--check here, or the emulated hosts: make run)",
			  m->cfg.path, m->arch->name);
	return -ENOTSUP;
}

static int kvm_open(struct vm *vm)
{
	int ret;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		ret = -errno;
		log_error("/dev/kvm: %s", strerror(errno));
		return ret;
	}
	ret = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ret != KVM_API_VERSION) {
		log_error("/dev/kvm: API version %d, expected %d", ret, KVM_API_VERSION);
		return -EINVAL;
	}
	ret = kvm_arch_vm_type(vm);
	if (ret < 0)
		return ret;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, ret);
	if (vm->vm_fd < 0) {
		ret = -errno;
		log_error("KVM_CREATE_VM: %s", strerror(errno));
		return ret;
	}
	vm->irq.vm_fd = vm->vm_fd;
	ret = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ret <= 0) {
		log_error("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return -EINVAL;
	}
	vm->run_size = ret;
	return 0;
}

#define RAM_GUARD (2ul << 20)

static int ram_create(struct vm *vm, int mem_fd)
{
	void *p;

	vm->ram_base = vm->m->ram_base;
	vm->ram_size = vm->m->ram_size;
	/*
	 * RAM sits between two inaccessible guard regions (an access running off either end
	 * faults instead of reaching other heap data), starts on a huge-page boundary, and
	 * stays out of core dumps.
	 */
	vm->ram_resv_size = vm->ram_size + 3 * RAM_GUARD;
	vm->ram_resv = mmap(NULL, vm->ram_resv_size, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	p = MAP_FAILED;
	if (vm->ram_resv != MAP_FAILED) {
		uintptr_t at =
			((uintptr_t)vm->ram_resv + 2 * RAM_GUARD - 1) & ~(uintptr_t)(RAM_GUARD - 1);

		/* A snapshot's memory: read in as touched, written copy-on-write. */
		p = mmap((void *)at, vm->ram_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED | (mem_fd < 0 ? MAP_ANONYMOUS : 0),
			 mem_fd, 0);
		vm->ram_from_file = mem_fd >= 0;
	} else {
		vm->ram_resv = NULL;
	}
	if (p == MAP_FAILED) {
		log_error("guest RAM: cannot map %llu MiB: %s",
			  (unsigned long long)(vm->ram_size >> 20), strerror(errno));
		return -ENOMEM;
	}
	vm->ram = p;
	vm->mem = (struct guest_mem){.hva = p, .gpa = vm->ram_base, .size = vm->m->ram_low_size};
	if (vm->m->ram_low_size < vm->ram_size) {
		vm->mem.hi_gpa = 1ull << 32;
		vm->mem.hi_size = vm->ram_size - vm->m->ram_low_size;
	}
	/*
	 * Huge pages: fewer faults and TLB misses, but a touched byte costs a whole one (32 MiB
	 * on a 16 KiB-page host); without them a minimal guest boots faster and in half the
	 * memory (docs/benchmarks.md), so they are asked for only when configured.
	 */
	madvise(p, vm->ram_size, vm->m->ram_hugepages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	madvise(p, vm->ram_size, MADV_DONTDUMP);
	/* One memory slot per RAM region: below the hole, and above 4 GiB when RAM goes on. */
	for (unsigned slot = 0; slot < (vm->mem.hi_size ? 2u : 1u); slot++) {
		int err = vm_map_memory(vm, slot ? vm->mem.hi_gpa : vm->mem.gpa,
					(uint8_t *)p + (slot ? vm->mem.size : 0),
					slot ? vm->mem.hi_size : vm->mem.size);

		if (err)
			return err;
	}
	return 0;
}

int vm_map_memory(struct vm *vm, uint64_t gpa, void *hva, uint64_t size)
{
	struct kvm_userspace_memory_region region = {
		.slot = vm->nslots,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		int err = -errno;

		log_error("guest memory at 0x%llx: KVM_SET_USER_MEMORY_REGION: %s",
			  (unsigned long long)gpa, strerror(errno));
		return err;
	}
	vm->nslots++;
	return 0;
}

static int vcpus_create(struct vm *vm)
{
	vm->nvcpus = vm->m->vcpus;
	vm->vcpus = calloc(vm->nvcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vm->vcpus[i].fd = -1;
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		int err;

		v->vm = vm;
		v->id = i;
		v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, i);
		if (v->fd < 0) {
			err = -errno;
			log_error("vcpu%u: KVM_CREATE_VCPU: %s", i, strerror(errno));
			return err;
		}
		v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
		if (v->run == MAP_FAILED) {
			err = -errno;
			v->run = NULL;
			log_error("vcpu%u: mmap kvm_run: %s", i, strerror(errno));
			return err;
		}
		err = kvm_arch_vcpu_init(vm, v);
		if (err)
			return err;
	}
	return 0;
}

static void ecam_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	pci_ecam_access(opaque, off, data, len, is_write);
}

/* The ECAM host bridge, when the machine has one; devices attach to it when realized. */
static int pci_create(struct vm *vm)
{
	int err;

	if (!vm->m->has_pci)
		return 0;
	vm->pci = calloc(1, sizeof(*vm->pci));
	if (!vm->pci)
		return -ENOMEM;
	pci_host_init(vm->pci, vm->m);
	err = bus_register(&vm->bus, vm->m->ecam.base, vm->m->ecam.size, ecam_access, vm->pci,
			   "pci-ecam");
	if (err)
		log_error("[pci] ECAM window: %s", strerror(-err));
	return err;
}

static int vm_build(struct vm *vm, struct machine *m, int mem_fd);

int vm_create(struct vm *vm, struct machine *m)
{
	return vm_build(vm, m, -1);
}

int vm_create_restored(struct vm *vm, struct machine *m, int mem_fd)
{
	return vm_build(vm, m, mem_fd);
}

static int vm_build(struct vm *vm, struct machine *m, int mem_fd)
{
	int err;

	memset(vm, 0, sizeof(*vm));
	vm->m = m;
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = -1;
	vm->loop.epfd = -1;
	bus_init(&vm->bus);
	bus_init(&vm->pio);
	irq_ctl_init(&vm->irq, vm);
	atomic_init(&vm->status, -1);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0)
		return -errno;
	err = loop_init(&vm->loop);
	err = err ?: kvm_open(vm);
	err = err ?: kvm_arch_vm_init(vm);
	err = err ?: ram_create(vm, mem_fd);
	err = err ?: kvm_arch_irqchip_create(vm);
	err = err ?: vcpus_create(vm);
	/* The irqchip is initialised before devices: KVM accepts irqfds only after that. */
	err = err ?: kvm_arch_irqchip_finalize(vm);
	err = err ?: pci_create(vm);
	err = err ?: (m->arch->realize ? m->arch->realize(vm) : 0);
	for (size_t i = 0; !err && i < m->ndevices; i++) {
		struct device *dev = &m->devices[i];

		err = dev->ops->realize ? dev->ops->realize(dev, vm) : 0;
		if (err)
			log_error("%s: %s", dev->name, strerror(-err));
	}
	/* The VM exists: the /dev/kvm system descriptor is not needed any more. */
	if (!err) {
		close(vm->kvm_fd);
		vm->kvm_fd = -1;
	}
	timeline_mark(TL_VM_BUILT);
	log_info("VM built at %.1f ms", timeline_now() * 1e3);
	return err;
}

int vm_load(struct vm *vm, const struct boot_images *bi, const struct boot_info *info)
{
	int err = boot_load(bi, &vm->mem);

	for (unsigned i = 0; !err && i < info->n; i++) {
		const struct boot_chunk *c = &info->chunk[i];
		void *d = gm_ptr(&vm->mem, c->gpa, c->len);

		if (!d) {
			log_error("boot information %s (%zu bytes at 0x%llx) is not in guest RAM",
				  c->name, c->len, (unsigned long long)c->gpa);
			return -EINVAL;
		}
		memcpy(d, c->data, c->len);
	}
	return err ?: kvm_arch_vcpu_boot(&vm->vcpus[0], bi->layout.entry, info->arg);
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	struct vm *vm = v->vm;

	if (run->mmio.len > 8)
		return;
	if (bus_access(&vm->bus, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
		       run->mmio.is_write))
		return;
	/* Nothing there: reads see zeros, writes are dropped; say so a few times. */
	if (!run->mmio.is_write)
		memset(run->mmio.data, 0, sizeof(run->mmio.data));
	if (atomic_fetch_add(&vm->mmio_warnings, 1) < 10)
		log_warn("vcpu%u: guest %s of %u bytes at unmapped address 0x%llx ignored", v->id,
			 run->mmio.is_write ? "write" : "read", run->mmio.len,
			 (unsigned long long)run->mmio.phys_addr);
}

static void handle_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		log_info("vcpu%u: guest powered off", v->id);
		vm_stop(v->vm, VM_POWEROFF);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		log_info("vcpu%u: guest requested reset", v->id);
		vm_stop(v->vm, VM_REBOOT);
		break;
	case KVM_SYSTEM_EVENT_CRASH:
		log_error("vcpu%u: guest reported a crash", v->id);
		vm_stop(v->vm, VM_FAILURE);
		break;
	default:
		log_warn("vcpu%u: system event %u ignored", v->id, v->run->system_event.type);
	}
}

/*
 * vm_pause asked the vCPUs to park and KVM_RUN returned EINTR: whatever the last exit
 * needed (an MMIO read's data) is in the vCPU's state by now (KVM completes it before it
 * looks at immediate_exit). Wait until the pause ends or the VM stops; vm_resume has reset
 * immediate_exit by then.
 */
static void vcpu_park(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (atomic_load(&vm->pause_req) && atomic_load(&vm->status) < 0)
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->parked--;
	pthread_mutex_unlock(&vm->pause_lock);
}

static void vcpu_run(struct vcpu *v)
{
	struct vm *vm = v->vm;
	uint64_t exited = 0; /* when KVM_RUN last returned (timeline_clock_ns): time in microvm */
	bool completing = false; /* the last KVM_RUN ended in an exit, handled since */
	sigset_t set;

	if (!sandbox_thread_enter(SANDBOX_VCPU)) /* before the first KVM_RUN */
		return;
	sigemptyset(&set);
	sigaddset(&set, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	while (atomic_load(&vm->status) < 0) {
		/*
		 * Paused before it ran (vm_start_paused), or between two runs. An exit just
		 * handled (an I/O read's data) is part of the vCPU's state only once KVM_RUN
		 * took it back: one more, with immediate_exit, does that and returns EINTR.
		 */
		if (atomic_load(&vm->pause_req)) {
			if (!completing) {
				vcpu_park(vm);
				continue;
			}
			v->run->immediate_exit = 1;
		}
		if (!atomic_exchange(&vm->ran, true)) {
			timeline_mark(TL_FIRST_KVM_RUN);
			log_info("first KVM_RUN at %.1f ms", timeline_now() * 1e3);
		}
		if (exited) {
			timeline_add_exit_time(timeline_clock_ns() - exited);
			exited = 0;
		}
		completing = false;
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR && atomic_load(&vm->pause_req)) {
				vcpu_park(vm);
				continue;
			}
			if (errno == EINTR || errno == EAGAIN)
				continue;
			log_error("vcpu%u: KVM_RUN: %s", v->id, strerror(errno));
			vm_stop(vm, VM_FAILURE);
			break;
		}
		exited = timeline_clock_ns();
		completing = true;
		atomic_fetch_add_explicit(&vm->exits, 1, memory_order_relaxed);
		switch (v->run->exit_reason) {
		case KVM_EXIT_MMIO:
			atomic_fetch_add_explicit(&vm->mmio_exits, 1, memory_order_relaxed);
			handle_mmio(v);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			handle_system_event(v);
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_FAIL_ENTRY:
			log_error("vcpu%u: KVM_RUN failed to enter the guest (reason 0x%llx)",
				  v->id,
				  (unsigned long long)
					  v->run->fail_entry.hardware_entry_failure_reason);
			vm_stop(vm, VM_FAILURE);
			break;
		default: {
			int r = kvm_arch_vcpu_exit(v);

			if (r > 0)
				break;
			if (r == 0)
				log_error("vcpu%u: unexpected KVM exit reason %u", v->id,
					  v->run->exit_reason);
			vm_stop(vm, VM_FAILURE);
			break;
		}
		}
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;

	vcpu_run(v);
	/* A pause waiting for every vCPU to park counts this one as out of the way. */
	pthread_mutex_lock(&vm->pause_lock);
	vm->vcpus_out++;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	return NULL;
}

/* Get every vCPU out of KVM_RUN: immediate_exit covers a signal that comes just before it. */
static void kick_vcpus(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (!v->started)
			continue;
		v->run->immediate_exit = 1;
		pthread_kill(v->thread, KICK_SIGNAL);
	}
}

static unsigned vcpus_started(const struct vm *vm)
{
	unsigned n = 0;

	for (unsigned i = 0; i < vm->nvcpus; i++)
		n += vm->vcpus[i].started;
	return n;
}

/* Let parked vCPUs go: back into KVM_RUN, or out when the VM stops. Main thread. */
static void unpark_vcpus(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	/* Parked, none is in KVM_RUN: a kick it took for the pause must not end the next one. */
	for (unsigned i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i].started && atomic_load(&vm->status) < 0)
			vm->vcpus[i].run->immediate_exit = 0;
	atomic_store(&vm->pause_req, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

/*
 * The guest's clock keeps running across a pause (as with Firecracker): KVM's counters and
 * clocks are not stopped, so after a resume the guest sees time jump forward by the pause,
 * never backward; its timers that expired meanwhile fire at once.
 */
int vm_pause(struct vm *vm)
{
	uint64_t start = timeline_clock_ns();
	unsigned want = vcpus_started(vm);
	size_t ndev = vm->m ? vm->m->ndevices : 0;

	if (atomic_load(&vm->paused))
		return 0;
	if (atomic_load(&vm->status) >= 0)
		return -ESHUTDOWN;
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_req, true);
	kick_vcpus(vm);
	while (vm->parked + vm->vcpus_out < want) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 20 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		/* Every 20 ms the kicks go again: belt and braces, a parked vCPU ignores them. */
		if (pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &until) == ETIMEDOUT)
			kick_vcpus(vm);
	}
	pthread_mutex_unlock(&vm->pause_lock);
	if (atomic_load(&vm->status) >= 0) {
		/* A vCPU stopped the VM meanwhile (power-off): the loop ends it. */
		unpark_vcpus(vm);
		return -ESHUTDOWN;
	}
	/* Devices in their order; a failure resumes those already paused, in reverse. */
	for (size_t i = 0; i < ndev; i++) {
		struct device *dev = &vm->m->devices[i];
		int err = dev->ops->pause ? dev->ops->pause(dev) : 0;

		if (!err)
			continue;
		log_error("%s: cannot pause: %s", dev->name, strerror(-err));
		while (i-- > 0)
			if (vm->m->devices[i].ops->resume)
				vm->m->devices[i].ops->resume(&vm->m->devices[i]);
		unpark_vcpus(vm);
		return err;
	}
	atomic_store(&vm->paused, true);
	vm->last_pause_ns = timeline_clock_ns() - start;
	log_info("paused in %.3f ms", vm->last_pause_ns / 1e6);
	return 0;
}

int vm_resume(struct vm *vm)
{
	uint64_t start = timeline_clock_ns();

	if (!atomic_load(&vm->paused))
		return 0;
	/* Devices in reverse order of pausing, then the vCPUs. */
	for (size_t i = vm->m->ndevices; i-- > 0;) {
		struct device *dev = &vm->m->devices[i];

		if (dev->ops->resume)
			dev->ops->resume(dev);
	}
	unpark_vcpus(vm);
	atomic_store(&vm->paused, false);
	vm->last_resume_ns = timeline_clock_ns() - start;
	log_info("resumed in %.3f ms", vm->last_resume_ns / 1e6);
	return 0;
}

void vm_start_paused(struct vm *vm)
{
	for (size_t i = 0; i < vm->m->ndevices; i++) {
		struct device *dev = &vm->m->devices[i];

		/* No vCPU ran yet: a pause waits only for what the restore's serving started. */
		if (dev->ops->pause && dev->ops->pause(dev))
			log_warn("%s: cannot start paused", dev->name);
	}
	atomic_store(&vm->pause_req, true);
	atomic_store(&vm->paused, true);
}

bool vm_paused(const struct vm *vm)
{
	return atomic_load(&vm->paused);
}

static void on_stop(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t v;

	(void)events;
	if (read(vm->stop_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("stop eventfd: %s", strerror(errno));
	loop_stop(&vm->loop);
}

int vm_run(struct vm *vm)
{
	sigset_t set;
	int err;

	kick_signal_install();
	/* vCPU threads unblock the kick signal themselves; the main thread never takes it. */
	sigemptyset(&set);
	sigaddset(&set, KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	err = loop_add(&vm->loop, vm->stop_fd, EPOLLIN, on_stop, vm);
	if (err)
		return VM_FAILURE;
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		err = pthread_create(&v->thread, NULL, vcpu_thread, v);
		if (err) {
			log_error("vcpu%u: cannot start thread: %s", i, strerror(err));
			vm_stop(vm, VM_FAILURE);
			break;
		}
		v->started = true;
		/* Named for top -H and for counting its wake-ups from outside (bench-peers). */
		char name[16];

		snprintf(name, sizeof(name), "vcpu%u", i);
		pthread_setname_np(v->thread, name);
	}
	/* Every thread exists and set-up is over: confine them all, then run. */
	err = sandbox_lock_down();
	if (err) {
		/* The held threads were told to do nothing: none ran unconfined. */
		log_error("sandbox: %s; stopping", strerror(-err));
		vm_stop(vm, VM_FAILURE);
	} else {
		timeline_mark(TL_SANDBOXED);
		log_info("sandboxed at %.1f ms", timeline_now() * 1e3);
	}
	err = loop_run(&vm->loop);
	if (err) {
		log_error("event loop: %s", strerror(-err));
		vm_stop(vm, VM_FAILURE);
	}
	vm_stop(vm, VM_FAILURE); /* no-op unless the loop ended without a status */
	kick_vcpus(vm);
	/* vCPUs parked by a pause wake up and see the status (a parked one is in no KVM_RUN). */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		if (vm->vcpus[i].started)
			pthread_join(vm->vcpus[i].thread, NULL);
		vm->vcpus[i].started = false;
	}
	log_info("stopped at %.1f ms with status %d", timeline_now() * 1e3,
		 atomic_load(&vm->status));
	log_info("%lu exits to microvm, %lu of them MMIO", atomic_load(&vm->exits),
		 atomic_load(&vm->mmio_exits));
	return atomic_load(&vm->status);
}

void vm_destroy(struct vm *vm)
{
	sandbox_cancel(); /* threads held for a lock-down that will not come end at once */
	/* Devices first (their ioeventfds, loop handlers and in-flight I/O use the VM). */
	for (size_t i = vm->m ? vm->m->ndevices : 0; i-- > 0;) {
		struct device *dev = &vm->m->devices[i];

		if (dev->ops->unrealize)
			dev->ops->unrealize(dev);
	}
	for (unsigned i = 0; vm->vcpus && i < vm->nvcpus; i++) {
		if (vm->vcpus[i].run)
			munmap(vm->vcpus[i].run, vm->run_size);
		if (vm->vcpus[i].fd >= 0)
			close(vm->vcpus[i].fd);
	}
	free(vm->vcpus);
	kvm_arch_vm_destroy(vm);
	if (vm->ram_resv)
		munmap(vm->ram_resv, vm->ram_resv_size);
	vm->ram = NULL;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	vm->vm_fd = vm->irq.vm_fd = -1;
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	loop_free(&vm->loop);
	bus_free(&vm->bus);
	bus_free(&vm->pio);
	free(vm->arch_priv);
	vm->arch_priv = NULL;
	irq_ctl_free(&vm->irq);
	free(vm->pci);
	vm->pci = NULL;
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	vm->vcpus = NULL;
	pthread_cond_destroy(&vm->pause_cond);
	pthread_mutex_destroy(&vm->pause_lock);
}
