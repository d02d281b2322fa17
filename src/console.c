/* console: the host side of a guest console (terminal, file or pty; input with back-pressure). */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "kick.h"
#include "log.h"
#include "loop.h"
#include "sandbox.h"
#include "term.h"

#define ESCAPE_CHAR 0x01 /* Ctrl-A, then 'x' quits, Ctrl-A again sends a literal Ctrl-A */

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
				c->quit(c->dev);
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

static void on_input(void *opaque, uint32_t events);

/*
 * Watch input or stop (the device is full): the descriptor leaves the loop meanwhile, so a
 * hang-up on it (a closed pipe, a pty with nothing attached), which epoll reports whatever
 * is asked for, cannot make the loop spin.
 */
static void watch_input(struct console *c, bool on)
{
	int err;

	if (on == c->in_watched || c->in_eof)
		return;
	if (!on) {
		loop_del(c->loop, c->in_fd);
		c->in_watched = false;
		return;
	}
	err = loop_add(c->loop, c->in_fd, c->in_events, on_input, c);
	if (err) {
		log_warn("%s: console input: %s; no more input", c->name, strerror(-err));
		c->in_eof = true;
		return;
	}
	c->in_watched = true;
}

/* Push what we hold; when the device is full, stop reading input until it reports room. */
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
				watch_input(c, false);
				return;
			}
			atomic_store(&c->waiting, false);
			c->off += n;
		}
	}
	c->len = c->off = 0;
	watch_input(c, true);
}

/* Input is ready: a terminal or pipe once per event; a pty (edge-triggered) until it is empty. */
static void on_input(void *opaque, uint32_t events)
{
	struct console *c = opaque;

	(void)events;
	while (c->off >= c->len && !c->in_eof) {
		ssize_t n = read(c->in_fd, c->buf, sizeof(c->buf));

		if (n < 0 && errno == EINTR)
			continue;
		/* Nothing more; for a pty, EIO: nothing attached, wait for the next edge. */
		if (n < 0 && (errno == EAGAIN || (c->pty && errno == EIO)))
			return;
		if (n <= 0) {
			/* End of input (or a closed pipe): the guest keeps running without input.
			 */
			watch_input(c, false);
			c->in_eof = true;
			return;
		}
		c->len = c->tty ? filter_escape(c, c->buf, n) : (size_t)n;
		c->off = 0;
		drain(c);
		if (!c->pty)
			return; /* level-triggered: called again while there is more */
	}
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

/* Does guest output reach nothing any more (olock held)? Then it is dropped at once. */
static bool nowhere(const struct console *c)
{
	return (c->out_fd < 0 || c->out_gone) && (c->log_fd < 0 || c->log_gone);
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
	if (nowhere(c)) {
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
	ok = nowhere(c) || CONSOLE_OUT_SIZE - c->olen >= CONSOLE_OUT_SLACK;
	if (!ok)
		c->out_waiting = true;
	pthread_mutex_unlock(&c->olock);
	return ok;
}

/*
 * out_fd takes nothing now (EAGAIN): wait until it does. A non-blocking stdout (set by
 * whoever shares it) or a full pipe is waited on, never retried in a loop. False when it is a
 * pty whose far end is closed: nothing is attached to read what waits.
 */
static bool wait_room(struct console *c)
{
	struct pollfd p = {.fd = c->out_fd, .events = POLLOUT};

	atomic_fetch_add_explicit(&c->waits, 1, memory_order_relaxed);
	if (poll(&p, 1, -1) < 0)
		return true; /* interrupted (the exit's kick): the caller looks again */
	return !(c->pty && (p.revents & POLLHUP));
}

/*
 * Hand n bytes to out_fd (writer thread): how many it took, or dropped because nothing is
 * attached to the pty; 0 to try again; -errno when the host side failed for good (a closed
 * pipe, a hung-up terminal, a full disk).
 */
static ssize_t out_put(struct console *c, const uint8_t *p, size_t n)
{
	ssize_t w;
	int err;

	atomic_fetch_add_explicit(&c->writes, 1, memory_order_relaxed);
	w = write(c->out_fd, p, n);
	if (w > 0)
		return w;
	err = w < 0 ? errno : EIO;
	if (err == EINTR || (err == EAGAIN && wait_room(c)))
		return 0;
	if (err == EAGAIN || (c->pty && err == EIO)) {
		c->unattached += n;
		return n;
	}
	return -err;
}

/* Copy n bytes into the log, all of them (writer thread); false when it cannot be written. */
static bool log_put(struct console *c, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(c->log_fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_warn("%s: console log: %s; guest output is no longer copied to it",
				 c->name, w < 0 ? strerror(errno) : "nothing written");
			return false;
		}
		p += w;
		n -= w;
	}
	return true;
}

/*
 * The writer thread: the only place that waits on the host's output. Each chunk goes to the
 * log first (all of it, whatever becomes of the output), then to out_fd. At exit a write or
 * wait that does not return is interrupted with KICK_SIGNAL (no SA_RESTART) and what is left
 * goes to the log only.
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
		size_t chunk, logged;
		const uint8_t *p;
		ssize_t took;
		bool room = false, gone, logging, log_ok = true;

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
		p = c->obuf + c->ohead;
		gone = c->out_fd < 0 || c->out_gone || c->abandon;
		logging = c->log_fd >= 0 && !c->log_gone;
		logged = logging ? c->ologged : 0;
		pthread_mutex_unlock(&c->olock);
		if (logging && logged < chunk) {
			log_ok = log_put(c, p + logged, chunk - logged);
			logged = chunk;
		}
		took = gone ? (ssize_t)chunk : out_put(c, p, chunk);
		if (took < 0) {
			if (took != -EPIPE) /* a reader that left (| head) is no news */
				log_warn("%s: console output: %s; guest output is dropped from now "
					 "on",
					 c->name, strerror(-took));
			gone = true;
			took = chunk;
		}
		pthread_mutex_lock(&c->olock);
		c->out_gone |= gone && !c->abandon && c->out_fd >= 0;
		c->log_gone |= !log_ok;
		c->ohead = (c->ohead + took) % CONSOLE_OUT_SIZE;
		c->olen -= took;
		c->ologged = logging && logged > (size_t)took ? logged - took : 0;
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

int console_attach(struct console *c, struct loop *loop, const struct console_host *h,
		   console_push_fn push, console_room_fn out_room, console_quit_fn quit, void *dev)
{
	int err;

	/* The writer's blocked write() is interrupted at exit; vm_run() installs the same. */
	kick_signal_install();
	c->loop = loop;
	c->name = h->name;
	c->push = push;
	c->out_room = out_room;
	c->quit = quit;
	c->dev = dev;
	c->in_fd = h->in_fd;
	c->out_fd = h->out_fd;
	c->log_fd = h->log_fd;
	c->pty = h->pty;
	c->room_fd = -1;
	/* A pty is ours (non-blocking): read until it is empty at each edge. */
	c->in_events = EPOLLIN | (h->pty ? EPOLLET : 0);
	c->tty = h->term && h->in_fd >= 0 && isatty(h->in_fd);
	pthread_mutex_init(&c->olock, NULL);
	pthread_cond_init(&c->ocond, NULL);
	err = pthread_create(&c->writer, NULL, writer_main, c);
	if (err)
		return -err;
	c->writer_ok = true;
	pthread_setname_np(c->writer, "console");
	c->room_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->room_fd < 0)
		return -errno;
	err = loop_add(loop, c->room_fd, EPOLLIN, on_room, c);
	if (err)
		return err;
	c->in_eof = c->in_fd < 0;
	/* Regular files and /dev/null cannot be polled: treat them as no input. */
	err = c->in_eof ? 0 : loop_add(loop, c->in_fd, c->in_events, on_input, c);
	if (err == -EPERM)
		c->in_eof = true;
	else if (err)
		return err;
	c->in_watched = !c->in_eof;
	if (c->tty) {
		err = term_raw();
		if (err)
			return err;
	}
	return 0;
}

void console_detach(struct console *c)
{
	if (c->in_watched)
		loop_del(c->loop, c->in_fd);
	c->in_watched = false;
	if (c->writer_ok) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_mutex_lock(&c->olock);
		c->ostop = true;
		pthread_cond_broadcast(&c->ocond);
		while (c->olen && !nowhere(c) &&
		       pthread_cond_timedwait(&c->ocond, &c->olock, &until) == 0)
			;
		if (c->olen && c->out_fd >= 0 && !c->out_gone)
			log_warn("%s: the host is not reading its console output; %zu bytes of "
				 "guest output dropped at exit",
				 c->name, c->olen);
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
			log_warn("%s: %lu bytes of guest output dropped (no room)", c->name,
				 c->dropped);
		if (c->unattached)
			log_info("%s: %lu bytes of guest output dropped with nothing attached to "
				 "its pty",
				 c->name, c->unattached);
	}
	if (c->tty)
		term_restore();
	if (c->room_fd >= 0) {
		loop_del(c->loop, c->room_fd);
		close(c->room_fd);
	}
	c->room_fd = -1;
}

int console_open_pty(char *name, size_t size)
{
	int fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC), far, err = 0;
	struct termios t;

	if (fd < 0)
		return -errno;
	if (grantpt(fd) < 0 || unlockpt(fd) < 0 || tcgetattr(fd, &t) < 0)
		err = -errno;
	else if ((err = ptsname_r(fd, name, size)))
		err = -err;
	if (!err) {
		/* Raw: no echo of guest output back as input, no line editing, no signals. */
		cfmakeraw(&t);
		if (tcsetattr(fd, TCSANOW, &t) < 0)
			err = -errno;
	}
	if (!err) {
		far = open(name, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (far < 0)
			err = -errno;
		else
			close(far);
	}
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int console_open_file(const char *path)
{
	/* Non-blocking: a FIFO or a terminal put there is refused below, never waited on. */
	int fd =
		open(path, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0666);
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}
