/* virtio-balloon: a memory balloon with statistics and free-page reporting, on any transport. */
#ifndef MICROVM_VIRTIO_BALLOON_H
#define MICROVM_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include "device.h"
#include "mem.h"

struct loop;
struct virtio_dev;

extern const struct device_ops virtio_balloon_ops;

/* The statistics tags the device keeps (virtio 1.2 5.5.6.3: SWAP_IN .. HTLB_PGFAIL). */
#define BALLOON_STATS 10

/* What the API reports of the balloon (a copy taken under the device lock). */
struct balloon_info {
	uint32_t amount_mib;	   /* the target */
	uint32_t target_pages;	   /* the same in 4 KiB pages (num_pages) */
	uint32_t actual_pages;	   /* what the driver says it holds (actual) */
	uint32_t stats_interval_s; /* 0: no statistics queue */
	bool deflate_on_oom, free_page_reporting;
	bool stats_valid;	       /* the driver has sent statistics */
	uint32_t stats_seen;	       /* bit t: tag t was in the latest statistics */
	uint64_t stats[BALLOON_STATS]; /* their values, by tag */
	uint64_t inflated, deflated;   /* 4 KiB pages the driver inflated / deflated */
	uint64_t refused;	       /* page numbers outside RAM, refused */
	uint64_t reported, discarded;  /* bytes reported free; bytes given back to the host */
	uint64_t bad_stats;	       /* statistics buffers refused (bad length) */
};

/*
 * Build the virtio side of the configured balloon dev over guest memory mem, its statistics
 * timer watched by loop, without a transport. *vd (if vd) is the virtio device. -errno;
 * balloon_stop undoes a partial start.
 */
int balloon_start(struct device *dev, const struct guest_mem *mem, struct loop *loop,
		  struct virtio_dev **vd);
/* Free what balloon_start made. */
void balloon_stop(struct device *dev);
/*
 * Set the target to mib MiB and tell the driver (a configuration change). 0, -EINVAL (more
 * than the guest's RAM) or -ENODEV (not started).
 */
int balloon_set_target(struct device *dev, uint32_t mib);
/*
 * Ask for statistics every s seconds from now on. -EINVAL when that would turn the
 * statistics queue on or off (it is offered, or not, when the device starts); -ENODEV.
 */
int balloon_set_interval(struct device *dev, uint32_t s);
/* The device's configuration, the driver's actual and the latest statistics. 0 or -ENODEV. */
int balloon_get_info(struct device *dev, struct balloon_info *out);
/* Tests and the fuzz target: the statistics timer fired (as the event loop would serve it). */
void balloon_stats_tick(struct device *dev);

#endif
