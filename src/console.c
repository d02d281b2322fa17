/* console: the host terminal side of the guest console (raw mode, input with back-pressure). */
#include "console.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "log.h"
#include "sandbox.h"
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
	raise(sig); /* SA_RESETHAND: the default action now */
}

/*
 * Every signal whose default action ends the process, except those microvm handles itself:
 * INT, TERM and HUP (a signalfd), USR1 (vCPU kicks), PIPE (ignored). KILL and STOP cannot
 * be caught: after kill -9 the terminal needs `reset`.
 */
static void catch_fatal_signals(void)
{
	static const int fatal[] = {SIGSEGV, SIGBUS,  SIGFPE,  SIGILL,	  SIGABRT, SIGQUIT,
				    SIGTRAP, SIGSYS,  SIGXCPU, SIGXFSZ,	  SIGALRM, SIGVTALRM,
				    SIGPROF, SIGUSR2, SIGPWR,  SIGSTKFLT, SIGPOLL};
	struct sigaction sa = {.sa_handler = fatal_signal, .sa_flags = SA_RESETHAND};

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(fatal); i++)
		sigaction(fatal[i], &sa, NULL);
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		sigaction(sig, &sa, NULL);
}

static int terminal_raw(void)
{
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
	catch_fatal_signals();
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
	uint8_t clean[64 + SANITIZE_SLACK];

	if (c->sanitize && n > 64) {
		for (size_t i = 0; i < n; i += 64)
			console_write(c, buf + i, n - i < 64 ? n - i : 64);
		return;
	}
	pthread_mutex_lock(&c->olock);
	if (c->sanitize) {
		n = sanitize(&c->filt, buf, n, clean);
		buf = clean;
	}
	if (c->out_gone) {
		n = 0; /* host output gone (closed pipe): drop guest output */
	} else if (n > CONSOLE_OUT_SIZE - c->olen) {
		c->dropped += n - (CONSOLE_OUT_SIZE - c->olen);
		n = CONSOLE_OUT_SIZE - c->olen;
	}
	for (size_t i = 0; i < n; i++)
		c->obuf[(c->ohead + c->olen + i) % CONSOLE_OUT_SIZE] = buf[i];
	c->olen += n;
	/* Wake the writer only when it sleeps: a busy one takes these bytes with the rest. */
	if (n && c->writer_idle)
		pthread_cond_broadcast(&c->ocond);
	pthread_mutex_unlock(&c->olock);
}

bool console_can_write(struct console *c)
{
	bool ok;

	pthread_mutex_lock(&c->olock);
	ok = c->out_gone || CONSOLE_OUT_SIZE - c->olen >= CONSOLE_OUT_SLACK;
	if (!ok)
		c->out_waiting = true;
	pthread_mutex_unlock(&c->olock);
	return ok;
}

/*
 * The writer thread: the only place that blocks on the host's output. At exit a write that
 * does not return is interrupted with KICK_SIGNAL (no SA_RESTART) and what is left dropped.
 */
static void *writer_main(void *opaque)
{
	struct console *c = opaque;

	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (!sandbox_thread_enter(SANDBOX_CONSOLE_OUT))
		return NULL; /* set-up failed: no output will come */
	pthread_mutex_lock(&c->olock);
	for (;;) {
		size_t chunk;
		ssize_t w;
		bool room = false;

		if (!c->olen) {
			if (c->ostop)
				break;
			c->writer_idle = true;
			pthread_cond_wait(&c->ocond, &c->olock);
			c->writer_idle = false;
			/*
			 * The guest writes a byte per exit: let a millisecond's worth gather, so
			 * that a boot log is a few hundred writes, not one wake-up and write per
			 * byte.
			 */
			if (!c->ostop) {
				pthread_mutex_unlock(&c->olock);
				nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
				pthread_mutex_lock(&c->olock);
			}
			continue;
		}
		chunk = c->olen < CONSOLE_OUT_SIZE - c->ohead ? c->olen
							      : CONSOLE_OUT_SIZE - c->ohead;
		pthread_mutex_unlock(&c->olock);
		w = write(c->out_fd, c->obuf + c->ohead, chunk);
		pthread_mutex_lock(&c->olock);
		if (c->abandon) {
			c->out_gone = true;
			c->olen = 0;
		} else if (w > 0) {
			c->ohead = (c->ohead + w) % CONSOLE_OUT_SIZE;
			c->olen -= w;
		} else if (w == 0 || (errno != EINTR && errno != EAGAIN)) {
			c->out_gone = true;
			c->olen = 0;
		}
		if (c->out_waiting && CONSOLE_OUT_SIZE - c->olen >= CONSOLE_OUT_SLACK) {
			c->out_waiting = false;
			room = true;
		}
		pthread_cond_broadcast(&c->ocond);
		if (room && c->out_room) {
			pthread_mutex_unlock(&c->olock);
			c->out_room(c->dev); /* takes the device's lock: never inside olock */
			pthread_mutex_lock(&c->olock);
		}
	}
	pthread_mutex_unlock(&c->olock);
	return NULL;
}

static void interrupt_only(int sig)
{
	(void)sig;
}

int console_attach(struct console *c, struct vm *vm, console_push_fn push, console_room_fn out_room,
		   void *dev)
{
	int err;

	struct sigaction old, sa = {.sa_handler = interrupt_only};

	/* The writer's blocked write() is interrupted at exit; vm_run() installs the same. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(KICK_SIGNAL, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
		sigaction(KICK_SIGNAL, &sa, NULL);
	c->vm = vm;
	c->push = push;
	c->out_room = out_room;
	c->dev = dev;
	pthread_mutex_init(&c->olock, NULL);
	pthread_cond_init(&c->ocond, NULL);
	err = pthread_create(&c->writer, NULL, writer_main, c);
	if (err)
		return -err;
	c->writer_ok = true;
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
	if (c->writer_ok) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_mutex_lock(&c->olock);
		c->ostop = true;
		pthread_cond_broadcast(&c->ocond);
		while (c->olen && !c->out_gone &&
		       pthread_cond_timedwait(&c->ocond, &c->olock, &until) == 0)
			;
		if (c->olen && !c->out_gone)
			log_warn("console: the host is not reading its output; %zu bytes of guest "
				 "output dropped at exit",
				 c->olen);
		c->abandon = true;
		pthread_mutex_unlock(&c->olock);
		/* A write() still blocked returns EINTR; retried until the writer is gone. */
		for (;;) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 10 * 1000 * 1000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			if (pthread_timedjoin_np(c->writer, NULL, &until) != ETIMEDOUT)
				break;
			pthread_kill(c->writer, KICK_SIGNAL);
		}
		c->writer_ok = false;
		if (c->dropped)
			log_warn("console: %lu bytes of guest output dropped (no room)",
				 c->dropped);
	}
	console_restore_terminal();
	if (c->room_fd > 0)
		close(c->room_fd);
	c->room_fd = -1;
}
