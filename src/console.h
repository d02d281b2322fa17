/* console: the host side of a guest console (terminal, file or pty; input with back-pressure). */
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

/* Guest output waiting for the host; only the writer thread ever waits on the host's output. */
#define CONSOLE_OUT_SIZE 65536
/* Room the device needs before it takes more output (a 16550A burst is 16 bytes). */
#define CONSOLE_OUT_SLACK 64

/* Where a console's host side is: descriptors its owner opened and closes, -1 for none. */
struct console_host {
	const char *name; /* the device's, for messages */
	int in_fd;	  /* input, watched on the loop */
	int out_fd;	  /* guest output; none: dropped */
	int log_fd;	  /* a regular file that gets a copy of the output */
	bool term;	  /* in_fd is microvm's stdin: a terminal there goes raw, takes Ctrl-A */
	bool pty;	  /* in_fd and out_fd are a pty master: output is dropped while its far end
			   * is closed (nothing attached), and input waits for one */
};

struct console {
	struct loop *loop;
	const char *name;
	int in_fd, out_fd, log_fd, room_fd;
	uint32_t in_events; /* what in_fd is watched for (a pty: edge-triggered) */
	bool in_watched;    /* in_fd is on the loop (off it while the device is full) */
	bool tty, escape, in_eof, pty;
	bool sanitize;	      /* strip terminal control sequences from guest output */
	struct sanitize filt; /* where the output stream is in a sequence (under olock) */
	atomic_bool waiting;  /* device is full: wake us through room_fd */
	console_push_fn push;
	console_quit_fn quit;
	void *dev;
	uint8_t buf[256];
	size_t len, off;
	/* Output: a ring the device fills and the writer thread drains to out_fd and log_fd. */
	console_room_fn out_room;
	pthread_mutex_t olock; /* guards the fields below; taken inside the device's lock */
	pthread_cond_t ocond;
	pthread_t writer;
	bool writer_ok, ostop;
	bool abandon;	  /* exit: drop what is left once a blocked write() is interrupted */
	bool writer_idle; /* the writer waits for output: console_write wakes it */
	bool out_waiting; /* the device was told there is no room: tell it when there is */
	bool out_gone;	  /* the host side of the output is closed: drop guest output */
	bool log_gone;	  /* the log could not be written: no more copies */
	size_t ohead, olen;
	size_t ologged; /* bytes at ohead already in the log (writer thread) */
	unsigned long dropped;
	/* Counted by the writer: unattached bytes were dropped with nothing on the pty. */
	unsigned long unattached;
	atomic_ulong writes, waits; /* write() calls on out_fd; waits for it to take more */
	uint8_t obuf[CONSOLE_OUT_SIZE];
};

/*
 * Connect the host side h to a device: watch its input on loop, start the output writer
 * thread; a terminal on stdin (h->term) goes raw (restored at exit). -errno.
 */
int console_attach(struct console *c, struct loop *loop, const struct console_host *h,
		   console_push_fn push, console_room_fn out_room, console_quit_fn quit, void *dev);
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
 * nobody reads cannot hold the exit up; the log still gets it), stop the writer and close
 * internal fds (not h's).
 */
void console_detach(struct console *c);
/*
 * A new pseudo-terminal in raw mode for a console: its master (non-blocking, close-on-exec)
 * or -errno; its far end's path in name. The far end is opened and closed once, so that
 * until a program opens it the master reports a hang-up and output to it is dropped.
 */
int console_open_pty(char *name, size_t size);
/*
 * Open path, a regular file, for console output (created if missing, written at its end,
 * close-on-exec, never waited on): the descriptor or -errno (-EINVAL: not a regular file).
 */
int console_open_file(const char *path);

#endif
