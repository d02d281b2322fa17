/* loop: the epoll event loop that serves host file descriptors off the vCPU threads. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

int loop_init(struct loop *l)
{
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->stop = false;
	l->nhandlers = 0;
	return l->epfd < 0 ? -errno : 0;
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_fn fn, void *opaque)
{
	struct loop_handler *h;
	struct epoll_event ev = {.events = events};

	if (l->nhandlers == (int)(sizeof(l->handlers) / sizeof(l->handlers[0])))
		return -ENOSPC;
	h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	*h = (struct loop_handler){fd, fn, opaque};
	ev.data.ptr = h;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;

		free(h);
		return err;
	}
	l->handlers[l->nhandlers++] = h;
	return 0;
}

static struct loop_handler *find(struct loop *l, int fd, int *idx)
{
	for (int i = 0; i < l->nhandlers; i++) {
		if (l->handlers[i]->fd == fd) {
			*idx = i;
			return l->handlers[i];
		}
	}
	return NULL;
}

int loop_mod(struct loop *l, int fd, uint32_t events)
{
	int idx;
	struct loop_handler *h = find(l, fd, &idx);
	struct epoll_event ev = {.events = events};

	if (!h)
		return -ENOENT;
	ev.data.ptr = h;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void loop_del(struct loop *l, int fd)
{
	int idx;
	struct loop_handler *h = find(l, fd, &idx);

	if (!h)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	/* A deleted handler may still be in the current batch: keep it until loop_free. */
	h->fn = NULL;
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[16];

	while (!l->stop) {
		int n = epoll_wait(l->epfd, evs, 16, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !l->stop; i++) {
			struct loop_handler *h = evs[i].data.ptr;

			if (h->fn)
				h->fn(h->opaque, evs[i].events);
		}
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

void loop_free(struct loop *l)
{
	for (int i = 0; i < l->nhandlers; i++)
		free(l->handlers[i]);
	l->nhandlers = 0;
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
}
