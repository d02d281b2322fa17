/* kickctl: choose, by measuring, where a device's queue kicks are served (loop or vCPU). */
#include "virtio/kickctl.h"

static enum kick_path other(enum kick_path p)
{
	return p == KICK_LOOP ? KICK_VCPU : KICK_LOOP;
}

/* Since the window (or trial) began, the loop path served several requests per kick. */
static bool deep(const struct kickctl *c, uint64_t done)
{
	return c->path == KICK_LOOP &&
	       (double)(done - c->win_done) >= KICKCTL_DEEP * (double)(c->kicks - c->win_kicks);
}

void kickctl_init(struct kickctl *c, enum kick_path path, uint64_t now)
{
	*c = (struct kickctl){.path = path, .since = now, .backoff = 1};
}

enum kick_path kickctl_tick(struct kickctl *c, uint64_t now, uint64_t done)
{
	uint64_t settle = KICKCTL_SETTLE_NS * c->backoff;
	bool d;

	c->kicks++;
	if (!c->trial) {
		if (now - c->since < settle)
			return c->path;
		if (!c->win || now - c->win_at > 2 * KICKCTL_TRIAL_NS ||
		    done - c->win_done < KICKCTL_MIN_DONE) {
			/* Idle, or the window went stale in a pause: measure the next stretch. */
			c->win = true;
			c->since = now - (settle - KICKCTL_TRIAL_NS);
			c->win_at = now;
			c->win_done = done;
			c->win_kicks = c->kicks;
			return c->path;
		}
		if (deep(c, done)) {
			/* Requests in flight: the loop serves them while the vCPU queues more. */
			c->deep++;
			c->since = now;
			c->win = false;
			return c->path;
		}
		c->base = (double)(done - c->win_done) / (double)(now - c->win_at);
		c->trial = true;
		c->trials++;
		c->path = other(c->path);
		c->since = now;
		c->win_done = done;
		c->win_kicks = c->kicks;
		return c->path;
	}
	if (now - c->since < KICKCTL_TRIAL_NS)
		return c->path;
	c->trial = false;
	d = deep(c, done);
	if (d || (double)(done - c->win_done) / (double)(now - c->since) > c->base * 1.15) {
		c->deep += d;
		c->kept++;
		c->backoff = 1;
	} else {
		c->path = other(c->path);
		c->backoff = c->backoff * 2 > KICKCTL_BACKOFF ? KICKCTL_BACKOFF : c->backoff * 2;
	}
	c->since = now;
	c->win = false;
	return c->path;
}
