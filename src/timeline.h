/* timeline: when each start-up phase happened, and the boot report (--boot-report) as JSON. */
#ifndef MICROVM_TIMELINE_H
#define MICROVM_TIMELINE_H

#include <stdint.h>
#include <stdio.h>

/* Phases in the order a boot normally reaches them; process start is time 0. */
enum tl_event {
	TL_CONFIG_PARSED,
	TL_STATE_READ, /* a restore: the snapshot's state file read and checked */
	TL_BOOT_FILES_READ,
	TL_VM_BUILT,
	TL_STATE_RESTORED, /* a restore: vCPUs, interrupt controller and devices restored */
	TL_IMAGES_LOADED,
	TL_SANDBOXED, /* privileges dropped; the filters of the main thread and of every thread
		       * that was waiting at the gate are in place */
	TL_FIRST_KVM_RUN,
	TL_FIRST_CONSOLE_OUTPUT,
	TL_INIT_REACHED, /* the guest's init wrote the boot timer */
	TL_EXIT,
	TL_COUNT
};

/* What the report says besides the timeline (filled in by the caller at exit). */
struct boot_report {
	const char *machine;
	unsigned vcpus;
	uint64_t memory_mib;
	int exit_status;
	unsigned long exits, mmio_exits;
	long long rss_kib, guest_rss_kib; /* -1 when unknown */
};

/* Nanoseconds on CLOCK_MONOTONIC, from an arbitrary origin: microvm's one clock for intervals. */
uint64_t timeline_clock_ns(void);
/* Seconds on that clock since the process started (or timeline_reset). */
double timeline_now(void);
/* Record the first time event e happens; later calls are ignored. Thread-safe. */
void timeline_mark(enum tl_event e);
/* Seconds from process start to event e, or -1 when it has not happened. */
double timeline_at(enum tl_event e);
/* Add time a vCPU thread spent in microvm between two KVM_RUNs. Thread-safe. */
void timeline_add_exit_time(uint64_t ns);
/* Total time added by timeline_add_exit_time, in seconds. */
double timeline_exit_time(void);
/* The JSON name of event e ("first_kvm_run", ...). */
const char *timeline_name(enum tl_event e);
/* Write the boot report as one JSON object. 0 or -errno. */
int timeline_write_json(FILE *f, const struct boot_report *r);
/* Start the clock again and forget every mark and the exit time (a restart, tests). */
void timeline_reset(void);

#endif
