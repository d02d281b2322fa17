/* kickctl: choose, by measuring, where a device's queue kicks are served (loop or vCPU). */
#ifndef MICROVM_KICKCTL_H
#define MICROVM_KICKCTL_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The event loop (ioeventfd: the vCPU goes on while another thread serves the queue) wins
 * when the driver keeps many requests in flight; the vCPU that trapped the notify wins when
 * it waits for each one (no thread wakes up twice per request). Which one holds is only seen
 * in what each achieves, so the settled path is timed, the other one tried for a short
 * while, and the faster kept; a trial that loses makes the next one come later. One thing
 * needs no timing: a driver that has several requests served per kick on the loop path keeps
 * them in flight, and the vCPU path would stop it queuing more while it serves them. There the
 * loop stays (or, on trial, is kept), whatever a noisy clock says.
 */
enum kick_path { KICK_LOOP, KICK_VCPU };

#define KICKCTL_SETTLE_NS (250ull * 1000 * 1000) /* settled phase (times the back-off) */
#define KICKCTL_TRIAL_NS  (100ull * 1000 * 1000) /* a trial, and the window it is matched with */
#define KICKCTL_MIN_DONE  16			 /* fewer completions: idle, no decision */
#define KICKCTL_BACKOFF	  16  /* at most this many settled phases between trials */
#define KICKCTL_DEEP	  1.5 /* completions per kick on the loop path from which it stays */

struct kickctl {
	enum kick_path path; /* in use */
	bool trial;	     /* path is the other one, on trial */
	uint64_t since;	     /* start of the phase (ns) */
	bool win;	     /* the settled path's measuring window has begun, at win_at */
	uint64_t win_at;
	uint64_t win_done;  /* completions at win_at (or at since, on trial) */
	uint64_t kicks;	    /* kicks seen (ticks) */
	uint64_t win_kicks; /* kicks at win_at (or at since, on trial) */
	double base;	    /* the settled path's completions per ns in its window */
	unsigned backoff;
	unsigned long trials, kept; /* trials made, and those that won */
	unsigned long deep;	    /* decisions for the loop taken from the completions per kick */
};

/* Start on path at time now. */
void kickctl_init(struct kickctl *c, enum kick_path path, uint64_t now);
/* At a kick, with the clock and the device's completions so far: the path to use now. */
enum kick_path kickctl_tick(struct kickctl *c, uint64_t now, uint64_t done);

#endif
