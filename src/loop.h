/* loop: the epoll event loop that serves host file descriptors off the vCPU threads. */
#ifndef MICROVM_LOOP_H
#define MICROVM_LOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef void (*loop_fn)(void *opaque, uint32_t events);

struct loop_handler {
	int fd; /* -1 once deleted: a later handler on a reused fd number never matches it */
	loop_fn fn;
	void *opaque;
	struct loop_handler *next;
};

struct loop {
	int epfd;
	bool stop;
	/*
	 * Guards the lists: loop_mod also comes from vCPU threads (a device changing what it
	 * waits for), while the loop thread adds and deletes.
	 */
	pthread_mutex_t lock;
	bool dispatching;	       /* inside a batch: deleted handlers wait in dead */
	struct loop_handler *handlers; /* live ones, newest first; no fixed limit */
	struct loop_handler *dead;     /* deleted during a batch, freed after it */
	unsigned nhandlers;
	pthread_t owner;    /* the thread that dispatches (set by loop_poll) */
	_Atomic bool owned; /* owner is set */
};

/* Create the epoll instance. Returns -errno. */
int loop_init(struct loop *l);
/* Watch fd for events (EPOLLIN...) and call fn from loop_run. Returns -errno. */
int loop_add(struct loop *l, int fd, uint32_t events, loop_fn fn, void *opaque);
/* Change the events watched on fd (0 pauses it). Returns -errno. */
int loop_mod(struct loop *l, int fd, uint32_t events);
/* Stop watching fd; its handler is never called again (safe from inside a handler). */
void loop_del(struct loop *l, int fd);
/* Wait up to timeout_ms (-1: forever) for one batch of events and dispatch it: how many. */
int loop_poll(struct loop *l, int timeout_ms);
/* Dispatch events until loop_stop is called from a handler. Returns -errno on failure. */
int loop_run(struct loop *l);
/* Make loop_run return after the current handler. */
void loop_stop(struct loop *l);
/* Is the calling thread the one that dispatches l's events (false before its first poll)? */
bool loop_on_thread(const struct loop *l);
/* Close the epoll instance and free handlers. */
void loop_free(struct loop *l);

#endif
