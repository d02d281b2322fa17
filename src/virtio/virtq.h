/* virtq: split virtqueues walked over checked guest memory (virtio 1.x, little-endian). */
#ifndef MICROVM_VIRTQ_H
#define MICROVM_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "iov.h"
#include "mem.h"

#define VIRTQ_MAX_SIZE	   1024
#define VIRTQ_MAX_INDIRECT 1024

struct virtq {
	uint16_t num;	  /* queue size chosen by the driver (power of two) */
	uint16_t num_max; /* largest size the device accepts */
	bool ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* set by virtq_start() from the addresses above, all checked against RAM */
	const void *desc;
	volatile void *avail;
	volatile void *used;
	uint16_t last_avail; /* next avail ring entry the device will take */
	uint16_t avail_seen; /* driver's avail->idx when the device last read it */
	uint16_t used_idx;   /* device's copy of used->idx */
	uint16_t signalled_used;
	bool signalled_valid;
	bool event_idx, indirect; /* negotiated features */
	/*
	 * Changes each time the queue stops or resets. A request remembers the generation it
	 * was popped in; its completion is dropped when they differ (the ring it came from is
	 * gone, and its size and addresses may be different now).
	 */
	uint32_t gen;
	uint64_t used_total; /* used entries ever added (kept across resets; for rates) */
};

/* One popped descriptor chain: readable segments first, then writable ones. */
struct virtq_chain {
	uint16_t head;
	unsigned nout, nin; /* readable / writable segment counts */
	uint32_t out_len, in_len;
	struct iovec *iov; /* nout + nin entries, caller-provided */
	unsigned iov_max;
};

/* Reset the queue to its power-on state (keeps num_max; a new generation). */
void virtq_reset(struct virtq *q);
/* Stop using the rings (a new generation): nothing is popped or pushed until virtq_start. */
void virtq_stop(struct virtq *q);
/*
 * What virtq_start would refuse in q's size and ring addresses: NULL when nothing, else
 * "num" (not a power of two up to num_max), "desc", "avail" or "used" (misaligned, or not
 * wholly in guest RAM).
 */
const char *virtq_layout_error(const struct virtq *q, const struct guest_mem *m);
/* Validate the ring addresses and sizes against guest memory and go live. 0 or -EINVAL. */
int virtq_start(struct virtq *q, const struct guest_mem *m);
/*
 * Take the next available chain into c. Returns 1 when a chain was taken, 0 when the ring is
 * empty, -EINVAL when the driver broke the protocol (the device must then need a reset).
 * Only guest RAM inside the described buffers is ever referenced.
 */
int virtq_pop(struct virtq *q, const struct guest_mem *m, struct virtq_chain *c);
/* Return a chain to the driver with len bytes written into its writable buffers. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/* Write a used entry without publishing it (several chains of one packet go out together). */
void virtq_add_used(struct virtq *q, uint16_t head, uint32_t len);
/* Publish every used entry added so far to the driver. */
void virtq_publish(struct virtq *q);
/*
 * Chains the driver had made available when the device last read its index that are not
 * taken yet: at most the ring's size (virtq_pop refuses more).
 */
static inline uint16_t virtq_waiting(const struct virtq *q)
{
	return (uint16_t)(q->avail_seen - q->last_avail);
}
/* Give the last n popped chains back: the next pops return them again. */
void virtq_unpop(struct virtq *q, unsigned n);
/* After pushes: does the driver want an interrupt (EVENT_IDX or NO_INTERRUPT aware)? */
bool virtq_should_notify(struct virtq *q);
/*
 * Before sleeping: ask the driver to notify when it adds buffers beyond those the device has
 * already seen (publishes avail_event with EVENT_IDX; chains given back with virtq_unpop()
 * do not count as new). Returns true if such buffers arrived meanwhile (poll again).
 */
bool virtq_enable_notify(struct virtq *q);

#endif
