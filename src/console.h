/* console: the host terminal side of the guest console (raw mode, input with back-pressure). */
#ifndef MICROVM_CONSOLE_H
#define MICROVM_CONSOLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sanitize.h"

struct loop;

/* Offer input bytes to the device; returns how many it accepted. Called on the loop thread. */
typedef size_t (*console_push_fn)(void *dev, const uint8_t *buf, size_t n);
/* The output buffer has room again after console_can_write said no (writer thread). */
typedef void (*console_room_fn)(void *dev);
/* The user asked to end the VM from the console (Ctrl-A x). Called on the loop thread. */
typedef void (*console_quit_fn)(void *dev);

/* Guest output waiting for the host; only the writer thread ever blocks in write(). */
#define CONSOLE_OUT_SIZE 65536
/* Room the device needs before it takes more output (a 16550A burst is 16 bytes). */
#define CONSOLE_OUT_SLACK 64

struct console {
	struct loop *loop;
	int in_fd, out_fd, room_fd;
	bool tty, escape, in_eof;
	bool sanitize;	      /* strip terminal control sequences from guest output */
	struct sanitize filt; /* where the output stream is in a sequence (under olock) */
	atomic_bool waiting;  /* device is full: wake us through room_fd */
	console_push_fn push;
	console_quit_fn quit;
	void *dev;
	uint8_t buf[256];
	size_t len, off;
	/* Output: a ring the device fills and the writer thread drains to out_fd. */
	console_room_fn out_room;
	pthread_mutex_t olock; /* guards the fields below; taken inside the device's lock */
	pthread_cond_t ocond;
	pthread_t writer;
	bool writer_ok, ostop;
	bool abandon;	  /* exit: drop what is left once a blocked write() is interrupted */
	bool writer_idle; /* the writer waits for output: console_write wakes it */
	bool out_waiting; /* the device was told there is no room: tell it when there is */
	bool out_gone;	  /* the host side of the output is closed: drop guest output */
	size_t ohead, olen;
	unsigned long dropped;
	uint8_t obuf[CONSOLE_OUT_SIZE];
};

/*
 * Attach stdin/stdout to a device, watching input on loop; puts a terminal in raw mode
 * (restored at exit), starts the output writer thread. -errno.
 */
int console_attach(struct console *c, struct loop *loop, console_push_fn push,
		   console_room_fn out_room, console_quit_fn quit, void *dev);
/*
 * Queue guest output for the host; never blocks. Bytes beyond the buffer are dropped and
 * counted: a device should ask console_can_write first.
 */
void console_write(struct console *c, const uint8_t *buf, size_t n);
/* Is there room for a burst of output (CONSOLE_OUT_SLACK)? If not, out_room says when. */
bool console_can_write(struct console *c);
/* The device has room for input again (any thread). */
void console_room(struct console *c);
/*
 * Stop watching the host side, give queued output a second to reach the host (a stdout
 * nobody reads cannot hold the exit up), stop the writer and close internal fds.
 */
void console_detach(struct console *c);

#endif
