/* console: the host terminal side of the guest console (raw mode, input with back-pressure). */
#include "console.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#include "log.h"
#include "vm.h"

#define ESCAPE_CHAR 0x01 /* Ctrl-A, then 'x' quits, Ctrl-A again sends a literal Ctrl-A */

static struct termios saved_termios;
static volatile int termios_saved;

void console_restore_terminal(void)
{
	if (termios_saved) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
		termios_saved = 0;
	}
}

/* A crash must not leave the user's terminal in raw mode: restore it, then die as before. */
static void fatal_signal(int sig)
{
	console_restore_terminal();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int terminal_raw(void)
{
	static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
	struct termios t;

	if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
		return -errno;
	t = saved_termios;
	cfmakeraw(&t);
	t.c_oflag |= OPOST | ONLCR; /* keep host-side newline handling for our own messages */
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0)
		return -errno;
	termios_saved = 1;
	atexit(console_restore_terminal);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		signal(fatal[i], fatal_signal);
	return 0;
}

/* Handle the escape prefix on terminal input in place; returns the new length. */
static size_t filter_escape(struct console *c, uint8_t *b, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (c->escape) {
			c->escape = false;
			if (b[i] == 'x' || b[i] == 'X') {
				fprintf(stderr,
					"\r\nmicrovm: terminated from the console (Ctrl-A x)\r\n");
				vm_stop(c->vm, VM_STOPPED);
				return o;
			}
			if (b[i] != ESCAPE_CHAR)
				continue; /* unknown escape: swallow it */
		} else if (b[i] == ESCAPE_CHAR) {
			c->escape = true;
			continue;
		}
		b[o++] = b[i];
	}
	return o;
}

/* Push what we hold; when the device is full, pause stdin until it reports room. */
static void drain(struct console *c)
{
	while (c->off < c->len) {
		size_t n = c->push(c->dev, c->buf + c->off, c->len - c->off);

		c->off += n;
		if (n == 0) {
			atomic_store(&c->waiting, true);
			/* Re-check: room may have appeared before the flag was visible. */
			n = c->push(c->dev, c->buf + c->off, c->len - c->off);
			if (n == 0) {
				loop_mod(&c->vm->loop, c->in_fd, 0);
				return;
			}
			atomic_store(&c->waiting, false);
			c->off += n;
		}
	}
	c->len = c->off = 0;
	if (!c->in_eof)
		loop_mod(&c->vm->loop, c->in_fd, EPOLLIN);
}

static void on_input(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	ssize_t n;

	(void)events;
	if (c->off < c->len)
		return;
	n = read(c->in_fd, c->buf, sizeof(c->buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* End of input (or a closed pipe): the guest keeps running without input. */
		c->in_eof = true;
		loop_del(&c->vm->loop, c->in_fd);
		return;
	}
	c->len = c->tty ? filter_escape(c, c->buf, n) : (size_t)n;
	c->off = 0;
	drain(c);
}

static void on_room(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	uint64_t v;

	(void)events;
	if (read(c->room_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	atomic_store(&c->waiting, false);
	drain(c);
}

void console_room(struct console *c)
{
	uint64_t one = 1;

	if (atomic_exchange(&c->waiting, false))
		if (write(c->room_fd, &one, sizeof(one)) < 0)
			log_warn("console: %s", strerror(errno));
}

void console_write(struct console *c, const uint8_t *buf, size_t n)
{
	while (n) {
		ssize_t w = write(c->out_fd, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* host output gone (closed pipe): drop guest output */
		buf += w;
		n -= w;
	}
}

int console_attach(struct console *c, struct vm *vm, console_push_fn push, void *dev)
{
	int err;

	c->vm = vm;
	c->push = push;
	c->dev = dev;
	c->in_fd = STDIN_FILENO;
	c->out_fd = STDOUT_FILENO;
	c->tty = isatty(STDIN_FILENO);
	c->room_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->room_fd < 0)
		return -errno;
	err = loop_add(&vm->loop, c->room_fd, EPOLLIN, on_room, c);
	if (err)
		return err;
	/* Regular files and /dev/null cannot be polled: treat them as no input. */
	err = loop_add(&vm->loop, c->in_fd, EPOLLIN, on_input, c);
	if (err == -EPERM)
		c->in_eof = true;
	else if (err)
		return err;
	if (c->tty) {
		err = terminal_raw();
		if (err)
			return err;
	}
	return 0;
}

void console_detach(struct console *c)
{
	console_restore_terminal();
	if (c->room_fd > 0)
		close(c->room_fd);
	c->room_fd = -1;
}
