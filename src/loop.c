/* loop: the epoll event loop that serves host file descriptors off the vCPU threads. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BATCH 16

int loop_init(struct loop *l)
{
	*l = (struct loop){.epfd = epoll_create1(EPOLL_CLOEXEC)};
	pthread_mutex_init(&l->lock, NULL);
	return l->epfd < 0 ? -errno : 0;
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_fn fn, void *opaque)
{
	struct loop_handler *h = malloc(sizeof(*h));
	struct epoll_event ev = {.events = events, .data.ptr = h};

	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&l->lock);
	*h = (struct loop_handler){fd, fn, opaque, l->handlers};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;

		pthread_mutex_unlock(&l->lock);
		free(h);
		return err;
	}
	l->handlers = h;
	l->nhandlers++;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

/* The live handler of fd, and the link that points to it. */
static struct loop_handler **find(struct loop *l, int fd)
{
	struct loop_handler **p = &l->handlers;

	while (*p && (*p)->fd != fd)
		p = &(*p)->next;
	return *p ? p : NULL;
}

int loop_mod(struct loop *l, int fd, uint32_t events)
{
	struct loop_handler **p;
	struct epoll_event ev = {.events = events};
	int err = -ENOENT;

	pthread_mutex_lock(&l->lock);
	p = find(l, fd);
	if (p) {
		ev.data.ptr = *p;
		err = epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
	}
	pthread_mutex_unlock(&l->lock);
	return err;
}

void loop_del(struct loop *l, int fd)
{
	struct loop_handler **p, *h;

	pthread_mutex_lock(&l->lock);
	p = find(l, fd);
	if (!p) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	h = *p;
	*p = h->next;
	l->nhandlers--;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	h->fd = -1;
	h->fn = NULL;
	if (!l->dispatching) {
		pthread_mutex_unlock(&l->lock);
		free(h);
		return;
	}
	/* It may still be in the current batch: free it once the batch is done. */
	h->next = l->dead;
	l->dead = h;
	pthread_mutex_unlock(&l->lock);
}

static void free_list(struct loop_handler *h)
{
	while (h) {
		struct loop_handler *next = h->next;

		free(h);
		h = next;
	}
}

int loop_poll(struct loop *l, int timeout_ms)
{
	struct epoll_event evs[BATCH];
	struct loop_handler *dead;
	int n = epoll_wait(l->epfd, evs, BATCH, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (!l->owned) {
		l->owner = pthread_self();
		l->owned = true;
	}
	pthread_mutex_lock(&l->lock);
	l->dispatching = true;
	pthread_mutex_unlock(&l->lock);
	/* Only this thread deletes handlers, and one in the batch is freed after it. */
	for (int i = 0; i < n && !l->stop; i++) {
		struct loop_handler *h = evs[i].data.ptr;

		if (h->fn)
			h->fn(h->opaque, evs[i].events);
	}
	pthread_mutex_lock(&l->lock);
	l->dispatching = false;
	dead = l->dead;
	l->dead = NULL;
	pthread_mutex_unlock(&l->lock);
	free_list(dead);
	return n;
}

bool loop_on_thread(const struct loop *l)
{
	return l->owned && pthread_equal(l->owner, pthread_self());
}

int loop_run(struct loop *l)
{
	while (!l->stop) {
		int n = loop_poll(l, -1);

		if (n < 0)
			return n;
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

void loop_free(struct loop *l)
{
	free_list(l->handlers);
	free_list(l->dead);
	l->handlers = l->dead = NULL;
	l->nhandlers = 0;
	if (l->epfd >= 0) {
		close(l->epfd);
		pthread_mutex_destroy(&l->lock);
	}
	l->epfd = -1;
}
