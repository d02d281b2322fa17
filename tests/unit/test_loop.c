/* Unit tests: the event loop has no handler limit, and deleted handlers never match again. */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop.h"
#include "test.h"

#define MANY 300

struct probe {
	struct loop *l;
	int fd, calls;
	int del_fd; /* delete this fd from inside the handler (-1: none) */
};

static void on_event(void *opaque, uint32_t events)
{
	struct probe *p = opaque;
	uint64_t v;

	(void)events;
	p->calls++;
	if (read(p->fd, &v, sizeof(v)) < 0)
		return;
	if (p->del_fd >= 0)
		loop_del(p->l, p->del_fd);
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	CHECK(write(fd, &one, sizeof(one)) == sizeof(one));
}

void test_loop(void)
{
	static struct probe p[MANY];
	struct probe again;
	struct loop l;
	int calls = 0, old;

	CHECK(loop_init(&l) == 0);
	/* More handlers than any fixed table: 16 vCPUs with 16-queue disks and NICs need ~150. */
	for (int i = 0; i < MANY; i++) {
		p[i] = (struct probe){&l, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), 0, -1};
		CHECK(p[i].fd >= 0 && loop_add(&l, p[i].fd, EPOLLIN, on_event, &p[i]) == 0);
	}
	CHECK_EQ(l.nhandlers, MANY);
	for (int i = 0; i < MANY; i++)
		signal_fd(p[i].fd);
	for (int round = 0; round < MANY && calls < MANY; round++) {
		CHECK(loop_poll(&l, 0) >= 0);
		calls = 0;
		for (int i = 0; i < MANY; i++)
			calls += p[i].calls;
	}
	CHECK_EQ(calls, MANY);

	/* A handler deletes another one that is ready in the same batch: it is not called. */
	p[0].del_fd = p[1].fd;
	p[0].calls = p[1].calls = 0;
	signal_fd(p[0].fd); /* epoll reports in the order they became ready */
	signal_fd(p[1].fd);
	CHECK(loop_poll(&l, 0) >= 0);
	CHECK_EQ(p[0].calls, 1);
	CHECK_EQ(p[1].calls, 0);
	CHECK_EQ(l.nhandlers, MANY - 1);
	CHECK_EQ(loop_mod(&l, p[1].fd, EPOLLIN), -ENOENT);

	/* The fd number is reused by a new handler: changes and events reach the new one. */
	old = p[1].fd;
	close(old);
	again = (struct probe){&l, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), 0, -1};
	CHECK_EQ(again.fd, old);
	CHECK(loop_add(&l, again.fd, 0, on_event, &again) == 0);
	signal_fd(again.fd);
	CHECK(loop_poll(&l, 0) >= 0);
	CHECK_EQ(again.calls, 0); /* added paused */
	CHECK(loop_mod(&l, again.fd, EPOLLIN) == 0);
	CHECK(loop_poll(&l, 0) >= 0);
	CHECK_EQ(again.calls, 1);
	CHECK_EQ(p[1].calls, 0);
	loop_del(&l, again.fd);
	close(again.fd);
	for (int i = 0; i < MANY; i++)
		if (i != 1)
			close(p[i].fd);
	loop_free(&l);
	CHECK_EQ(l.nhandlers, 0);
}
