/* Unit tests: the kick path controller, on simulated workloads and a simulated clock. */
#include "test.h"
#include "virtio/kickctl.h"

#define SEC 1000000000ull

struct sim {
	struct kickctl c;
	uint64_t t, done;
	uint64_t vcpu_ns, total_ns; /* time on the vCPU path, and in all, since the last mark */
	unsigned per_kick;	    /* loop path: requests a kick brings (0: one) */
};

/*
 * secs of a workload that completes rate[path] requests a second, one kick each (an idle
 * one: one request a second whatever the path); on the loop path, per_kick requests a kick
 * when set (a driver that keeps them in flight). The vCPU serves each kick before the driver
 * can queue more: one request a kick there.
 */
static void run(struct sim *s, double loop_rate, double vcpu_rate, double secs)
{
	uint64_t end = s->t + (uint64_t)(secs * SEC);

	while (s->t < end) {
		enum kick_path p = s->c.path;
		uint64_t dt = (uint64_t)(SEC / (p == KICK_LOOP ? loop_rate : vcpu_rate));

		unsigned n = p == KICK_LOOP && s->per_kick ? s->per_kick : 1;

		s->t += dt * n;
		s->done += n;
		s->total_ns += dt * n;
		if (p == KICK_VCPU)
			s->vcpu_ns += dt * n;
		kickctl_tick(&s->c, s->t, s->done);
	}
}

static double vcpu_share(struct sim *s)
{
	double r = (double)s->vcpu_ns / (double)s->total_ns;

	s->vcpu_ns = s->total_ns = 0;
	return r;
}

void test_kickctl(void)
{
	struct sim s = {.t = 5 * SEC};
	unsigned long trials;

	/* Waiting on each request (QD1): the vCPU path wins and stays. */
	kickctl_init(&s.c, KICK_LOOP, s.t);
	run(&s, 490, 850, 5);
	vcpu_share(&s);
	run(&s, 490, 850, 20);
	CHECK(vcpu_share(&s) > 0.9);
	CHECK(s.c.kept >= 1);
	CHECK_EQ(s.c.deep, 0); /* one request a kick: timing decides */
	/* Then many requests in flight (QD32): back to the loop, trials grow rare. */
	run(&s, 2100, 780, 5);
	vcpu_share(&s);
	trials = s.c.trials;
	run(&s, 2100, 780, 40);
	CHECK(vcpu_share(&s) < 0.05);
	CHECK(s.c.trials - trials <= 12); /* every 4 s, once backed off */
	CHECK(s.c.path == KICK_LOOP);

	/* Both paths alike: it stays where it started, however many trials. */
	s = (struct sim){.t = 5 * SEC};
	kickctl_init(&s.c, KICK_LOOP, s.t);
	run(&s, 1000, 1050, 30);
	CHECK(s.c.trials >= 3 && s.c.kept == 0);
	CHECK(vcpu_share(&s) < 0.1);

	/*
	 * Requests in flight, three a kick on the loop path: however the clock flatters the
	 * vCPU (a host where timing is noise), the loop stays, without trials.
	 */
	s = (struct sim){.t = 5 * SEC, .per_kick = 3};
	kickctl_init(&s.c, KICK_LOOP, s.t);
	run(&s, 1000, 1300, 30);
	CHECK_EQ(s.c.trials, 0);
	CHECK(s.c.deep >= 20);
	CHECK(vcpu_share(&s) < 0.001);
	/* Started on the vCPU path: its first trial of the loop sees the depth and keeps it. */
	s = (struct sim){.t = 5 * SEC, .per_kick = 3};
	kickctl_init(&s.c, KICK_VCPU, s.t);
	run(&s, 1000, 1300, 30);
	CHECK_EQ(s.c.trials, 1);
	CHECK_EQ(s.c.kept, 1);
	CHECK(s.c.path == KICK_LOOP);
	CHECK(vcpu_share(&s) < 0.02);
	/* Idle: a request a second is not enough to judge; no trials. */
	s = (struct sim){.t = 5 * SEC};
	kickctl_init(&s.c, KICK_VCPU, s.t);
	run(&s, 1, 1, 60);
	CHECK_EQ(s.c.trials, 0);
	CHECK(s.c.path == KICK_VCPU);
}
