/*
 * sandbox-cost: what the sandbox adds to set-up, natively on this host (no KVM needed).
 * Each run forks a child that builds the four filters (sandbox_prepare), starts THREADS
 * threads that wait at the gate as microvm's do, and locks down (limits, capabilities,
 * every thread's filter); the child reports both times. Prints the median, p95 and max
 * over RUNS runs for seccomp on, and for off (the lock-down without filters).
 * Usage: sandbox-cost [RUNS [THREADS]]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"
#include "timeline.h"

static void *waiter(void *arg)
{
	(void)arg;
	sandbox_thread_enter(SANDBOX_VCPU);
	return NULL;
}

/* One child: prepare and lock-down times (ms) written to fd. */
static void child(int fd, int mode, int nthreads)
{
	struct sandbox_config c = {.mode = mode};
	pthread_t t[64];
	double t0, t1, t2, r[2];

	t0 = timeline_clock_ns() / 1e6;
	if (sandbox_prepare(&c))
		_exit(2);
	t1 = timeline_clock_ns() / 1e6;
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&t[i], NULL, waiter, NULL))
			_exit(3);
	t2 = timeline_clock_ns() / 1e6;
	if (sandbox_lock_down())
		_exit(4);
	r[0] = t1 - t0;
	r[1] = timeline_clock_ns() / 1e6 - t2;
	if (write(fd, r, sizeof(r)) != sizeof(r))
		_exit(5);
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	_exit(0);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report(const char *what, double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	printf("%-26s median %.3f ms  p95 %.3f ms  max %.3f ms\n", what, v[n / 2],
	       v[(int)(0.95 * (n - 1))], v[n - 1]);
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 200, nthreads = argc > 2 ? atoi(argv[2]) : 6;
	static const char *const names[] = {"on", "off"};
	static const int modes[] = {SANDBOX_ON, SANDBOX_OFF};
	double *prep[2], *lock[2];

	if (runs < 1 || nthreads < 0 || nthreads > 64)
		return 2;
	for (int m = 0; m < 2; m++) {
		prep[m] = calloc(runs, sizeof(double));
		lock[m] = calloc(runs, sizeof(double));
	}
	/* On and off interleaved, run by run. */
	for (int i = 0; i < runs; i++) {
		for (int m = 0; m < 2; m++) {
			int p[2], ws;
			double r[2];
			pid_t pid;

			if (pipe(p) < 0)
				return 1;
			pid = fork();
			if (pid == 0) {
				close(p[0]);
				child(p[1], modes[m], nthreads);
			}
			close(p[1]);
			if (read(p[0], r, sizeof(r)) != sizeof(r) || waitpid(pid, &ws, 0) != pid ||
			    !WIFEXITED(ws) || WEXITSTATUS(ws)) {
				fprintf(stderr, "sandbox-cost: run %d (seccomp %s) failed\n", i,
					names[m]);
				return 1;
			}
			close(p[0]);
			prep[m][i] = r[0];
			lock[m][i] = r[1];
		}
	}
	printf("sandbox-cost: %d runs each, %d threads at the gate\n", runs, nthreads);
	report("seccomp on: build filters", prep[0], runs);
	report("seccomp on: lock-down", lock[0], runs);
	report("seccomp off: prepare", prep[1], runs);
	report("seccomp off: lock-down", lock[1], runs);
	return 0;
}
