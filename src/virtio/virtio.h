/* virtio: the transport-independent virtio 1.x device core (features, status, queues, config). */
#ifndef MICROVM_VIRTIO_H
#define MICROVM_VIRTIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mem.h"
#include "virtio/kickctl.h"
#include "virtio/virtq.h"

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER	  2
#define VIRTIO_STATUS_DRIVER_OK	  4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED	  128

#define VIRTIO_ISR_QUEUE  1
#define VIRTIO_ISR_CONFIG 2

#define VIRTIO_VENDOR_ID 0x1af4

struct loop;
struct snap_sec;
struct virtio_dev;

/* What a device type implements. Every callback runs with the device lock held. */
struct virtio_ops {
	uint32_t device_id;
	/* The driver set DRIVER_OK: start serving. -errno makes the device need a reset. */
	int (*activate)(struct virtio_dev *vd);
	/* New buffers may be available on queue q. */
	void (*notify)(struct virtio_dev *vd, unsigned q);
	/*
	 * The queues are stopped (a new generation): finish or cancel every request in flight,
	 * pushing nothing. The core then resets the queues. It may wait with the device lock
	 * released (vd->resetting keeps the driver's accesses out meanwhile).
	 */
	void (*reset)(struct virtio_dev *vd);
	/* Optional: the driver's features are consistent (dependencies); false refuses them. */
	bool (*features_ok)(const struct virtio_dev *vd);
	/*
	 * Optional: what a data path outside the device lock depends on may have changed:
	 * DEVICE_NEEDS_RESET, a queue disabled, DMA allowed or not, or how interrupts reach the
	 * driver (MSI-X enable, masks, messages, vectors; vd->queue_irqfd may answer otherwise).
	 */
	void (*changed)(struct virtio_dev *vd);
	/*
	 * Optional, for a restore: may the configuration space be this device's although the
	 * saved one (config_len bytes) differs? Only where the host chooses it anew (a NIC's MAC
	 * address); without the hook any difference refuses the state.
	 */
	bool (*config_restorable)(const struct virtio_dev *vd, const uint8_t *saved);
	/*
	 * Optional: the driver writes len bytes at off, inside the configuration space (a
	 * balloon's actual); the device checks which field it is. Without it writes are ignored.
	 */
	void (*config_write)(struct virtio_dev *vd, uint32_t off, const uint8_t *data,
			     uint32_t len);
};

/* What a transport does for the core (set when it attaches a device). Lock held in each. */
struct virtio_transport_ops {
	/* Deliver an interrupt for queue vq, or the configuration change (vq < 0). */
	void (*interrupt)(struct virtio_dev *vd, int vq);
	/*
	 * Optional: an irqfd that delivers queue q's interrupt as it stands now (vector
	 * enabled, unmasked, routed), or -1.
	 */
	int (*queue_irqfd)(struct virtio_dev *vd, unsigned q);
	/* Optional: register (trap = false) or remove every queue's ioeventfd. -errno (nothing
	 * changed). */
	int (*set_trap_kicks)(struct virtio_dev *vd, bool trap);
};

/* Where queue kicks are served: the event loop (ioeventfds) or the vCPU that trapped them. */
struct virtio_kick_path {
	bool trap;	     /* no ioeventfds: a queue kick is served on the vCPU that made it */
	bool adaptive;	     /* trap follows ctl (ioeventfd = auto) */
	unsigned long moves; /* times trap changed (ioeventfd = auto) */
	struct kickctl ctl;
};

/* A device's counters, for --verbose at exit. */
struct virtio_stats {
	atomic_ulong trapped;	    /* guest accesses to the transport's registers (each an exit) */
	unsigned long kick_wakeups; /* kicks the event loop woke up for (loop thread only) */
	unsigned long interrupts;   /* queue interrupts sent (lock held) */
};

struct virtio_dev {
	const char *name;
	const struct virtio_ops *ops;
	void *priv;
	pthread_mutex_t lock;
	uint64_t host_features, guest_features;
	uint8_t status;
	uint32_t config_gen;
	uint8_t *config; /* device-specific configuration space (little-endian) */
	uint32_t config_len;
	struct virtq *vqs;
	unsigned nvqs;
	const struct guest_mem *mem;
	atomic_uint isr;
	const struct virtio_transport_ops *tops; /* set by the transport */
	void *transport;			 /* the transport's own state */
	struct virtio_kick *kicks;		 /* one eventfd per queue, from virtio_kicks_open */
	bool dma_off;	/* the transport forbids DMA (PCI bus mastering off) */
	bool resetting; /* inside ops->reset: the driver's writes are ignored */
	bool paused;	/* the VM is paused: kicks are dropped (resume serves every queue) */
	unsigned warnings;
	struct virtio_kick_path kick;
	struct virtio_stats stats;
};

/* Set up the core: features offered besides VERSION_1/EVENT_IDX/INDIRECT, queues, config. */
int virtio_init(struct virtio_dev *vd, const char *name, const struct virtio_ops *ops, void *priv,
		uint64_t features, unsigned nvqs, uint16_t queue_max, void *config,
		uint32_t config_len, const struct guest_mem *mem);
/* Free what virtio_init allocated. */
void virtio_free(struct virtio_dev *vd);

/* Transport side (lock held by the caller through virtio_lock/virtio_unlock). */
void virtio_lock(struct virtio_dev *vd);
void virtio_unlock(struct virtio_dev *vd);
/* 32 bits of the device's features, word sel (0 or 1; others read 0). */
uint32_t virtio_host_features(const struct virtio_dev *vd, uint32_t sel);
/* Driver writes 32 bits of its features (ignored once FEATURES_OK is set). */
void virtio_set_guest_features(struct virtio_dev *vd, uint32_t sel, uint32_t val);
/* Driver writes the status register: resets on 0, checks features, activates on DRIVER_OK. */
void virtio_set_status(struct virtio_dev *vd, uint8_t status);
/*
 * Queue q if the driver may write its size and ring addresses now, else NULL: only while it
 * is disabled and before DRIVER_OK (virtio 1.2 3.1.1); from DRIVER_OK until a reset the
 * layout is frozen, so no request in flight can outlive the rings it was taken from.
 */
struct virtq *virtio_queue_layout(struct virtio_dev *vd, unsigned q);
/* Driver enables queue q (ready = true) after setting its size and addresses. */
void virtio_queue_enable(struct virtio_dev *vd, unsigned q);
/* Driver disables queue q: nothing more is taken from it or returned to it (new generation). */
void virtio_queue_disable(struct virtio_dev *vd, unsigned q);
/* The transport allows (true) or forbids device DMA; allowing it again serves the queues. */
void virtio_set_dma(struct virtio_dev *vd, bool enabled);
/* Device-specific config space access at offset; out-of-range reads return zeros. */
void virtio_config_access(struct virtio_dev *vd, uint32_t off, uint8_t *data, uint32_t len,
			  bool is_write);
/* A queue notification from the driver (ioeventfd or trapped write); takes the lock. */
void virtio_queue_notify(struct virtio_dev *vd, unsigned q);
/* Reset the whole device to its power-on state (status 0, queues torn down). */
void virtio_reset(struct virtio_dev *vd);
/*
 * The VM pauses (true) or resumes: while paused, queue kicks are read and dropped and no
 * queue is served (completions of what is in flight still are). Lock held.
 */
void virtio_set_paused(struct virtio_dev *vd, bool paused);
/*
 * Let the device look at every ready queue once, if it is live and not paused: buffers may
 * have been posted while nobody served them (before DRIVER_OK, DMA off, paused). Lock held.
 */
void virtio_serve_queues(struct virtio_dev *vd);
/*
 * ioeventfd = auto: from now on (transport attached, trap_kicks as it starts) choose where
 * kicks are served by measuring both ways (virtio/kickctl.h).
 */
void virtio_kicks_adapt(struct virtio_dev *vd);

/*
 * Snapshot (lock held, device paused): the core's state as fields of sec: its shape
 * (device_id, queues, config), the driver's features, status, config generation, ISR, and
 * each queue's layout and place in its rings ("q0.num", "q0.last_avail"...). 0 or -errno.
 */
int virtio_save(const struct virtio_dev *vd, struct snap_sec *sec);
/*
 * Restore what virtio_save wrote into a device as realize left it (lock held): every value
 * is checked as the driver's writes are (features offered, status reachable, ready queues'
 * sizes and rings as virtq_start takes them); on -EINVAL (said, naming the field) nothing
 * changed. The device is not started: virtio_restart does that.
 */
int virtio_restore(struct virtio_dev *vd, const struct snap_sec *sec);
/* After a restore (lock held): start a device whose driver had set DRIVER_OK, as it did. */
void virtio_restart(struct virtio_dev *vd);

/* A queue's kick eventfd: the transport has KVM signal it on the driver's notify write. */
struct virtio_kick {
	struct virtio_dev *vd;
	unsigned q;
	int fd;
};

/* One kick eventfd per queue of vd (vd->kicks), each watched by loop. -errno (close undoes). */
int virtio_kicks_open(struct virtio_dev *vd, struct loop *loop);
/* Stop watching and close the kick eventfds and free them (safe when none are open). */
void virtio_kicks_close(struct virtio_dev *vd, struct loop *loop);

/* Device side (lock held). */
/*
 * Serve queue q again soon from the event loop (its kick eventfd): a device that stopped
 * after its budget of work per wake-up calls this instead of looping on.
 */
void virtio_queue_reschedule(struct virtio_dev *vd, unsigned q);
/* Interrupt the driver for queue q if its suppression settings allow. */
void virtio_queue_interrupt(struct virtio_dev *vd, unsigned q);
/* Interrupt the driver for queue q now (whoever pushed applied the suppression rules). */
void virtio_queue_interrupt_now(struct virtio_dev *vd, unsigned q);
/* The driver broke the protocol: set DEVICE_NEEDS_RESET, tell it, warn the host (rate-limited). */
void virtio_needs_reset(struct virtio_dev *vd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Tell the device that vd->ops->changed lists may have changed (lock held). */
void virtio_changed(struct virtio_dev *vd);
/* True between DRIVER_OK and reset, while the device is not broken and may use DMA. */
bool virtio_live(const struct virtio_dev *vd);
/* Has the driver negotiated feature bit? */
bool virtio_has_feature(const struct virtio_dev *vd, unsigned bit);

#endif
