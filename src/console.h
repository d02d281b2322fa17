/* console: the host terminal side of the guest console (raw mode, input with back-pressure). */
#ifndef MICROVM_CONSOLE_H
#define MICROVM_CONSOLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

/* Offer input bytes to the device; returns how many it accepted. Called on the loop thread. */
typedef size_t (*console_push_fn)(void *dev, const uint8_t *buf, size_t n);

struct console {
	struct vm *vm;
	int in_fd, out_fd, room_fd;
	bool tty, escape, in_eof;
	atomic_bool waiting; /* device is full: wake us through room_fd */
	console_push_fn push;
	void *dev;
	uint8_t buf[256];
	size_t len, off;
};

/* Attach stdin/stdout to a device; puts a terminal in raw mode (restored at exit). -errno. */
int console_attach(struct console *c, struct vm *vm, console_push_fn push, void *dev);
/* Write guest output bytes to the host. */
void console_write(struct console *c, const uint8_t *buf, size_t n);
/* The device has room for input again (any thread). */
void console_room(struct console *c);
/* Stop watching the host side and close internal fds. */
void console_detach(struct console *c);
/* Restore the terminal mode saved by console_attach (idempotent, async-signal-safe). */
void console_restore_terminal(void);

#endif
