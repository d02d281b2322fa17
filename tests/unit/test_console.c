/*
 * Unit tests: the console's host side. A full or non-blocking output is waited on, never
 * retried in a loop; the log gets what the output gets; a pty drops output while nothing is
 * attached and carries it both ways when something is. Through the UART device: each host
 * (stdio, file, pty, off) with a log, and each again after a restore.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arch.h"
#include "console.h"
#include "device.h"
#include "kvm_arch.h"
#include "loop.h"
#include "machine.h"
#include "snapshot/snapfile.h"
#include "snapshot/snapshot.h"
#include "test.h"
#include "vm.h"

/* The device side of a console: takes input up to cap bytes, counts "room again" calls. */
struct fake {
	uint8_t in[256];
	size_t got, cap;
	atomic_uint rooms;
};

static size_t fake_push(void *dev, const uint8_t *buf, size_t n)
{
	struct fake *f = dev;
	size_t k = n < f->cap - f->got ? n : f->cap - f->got;

	memcpy(f->in + f->got, buf, k);
	f->got += k;
	return k;
}

static void fake_room(void *dev)
{
	atomic_fetch_add(&((struct fake *)dev)->rooms, 1);
}

static void fake_quit(void *dev)
{
	(void)dev;
}

static void nap(void)
{
	nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
}

/* A console on loop with host side h (NULL when attaching failed). */
static struct console *attach(struct loop *l, struct fake *f, struct console_host h, bool clean)
{
	struct console *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	f->cap = sizeof(f->in);
	c->sanitize = clean;
	if (console_attach(c, l, &h, fake_push, fake_room, fake_quit, f)) {
		CHECK(!"console_attach");
		console_detach(c);
		free(c);
		return NULL;
	}
	return c;
}

/* Queue n bytes as a UART does: a burst while there is room, else wait for out_room. */
static void feed(struct console *c, struct fake *f, const uint8_t *p, size_t n)
{
	while (n) {
		unsigned rooms = atomic_load(&f->rooms);
		size_t k = n < 16 ? n : 16;

		if (!console_can_write(c)) {
			if (!TEST_WAIT(atomic_load(&f->rooms) != rooms, nap()))
				return;
			continue;
		}
		console_write(c, p, k);
		p += k;
		n -= k;
	}
}

/* Read fd until want bytes came, it ends, or nothing comes for a hang's time: how many. */
static size_t read_all(int fd, uint8_t *buf, size_t want)
{
	size_t got = 0;

	while (got < want) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (poll(&p, 1, TEST_HANG_SECONDS * 1000) <= 0)
			break;
		r = read(fd, buf + got, want - got);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

static void pattern(uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)('a' + (i * 7 + i / 251) % 26);
}

/* A file's whole content (caller frees), its size in *n; NULL if it cannot be read. */
static uint8_t *slurp(const char *path, size_t *n)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*n = 0;
	if (fd < 0 || fstat(fd, &st) < 0 || !(buf = malloc(st.st_size + 1))) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	*n = read_all(fd, buf, st.st_size);
	buf[*n] = 0;
	close(fd);
	return buf;
}

/*
 * A non-blocking stdout (set by a parent that shares the terminal, or a pipe nobody reads)
 * takes nothing: the writer waits for it to take more instead of retrying, the UART is told
 * there is no room (the guest waits, no vCPU does), and output goes on once it is read.
 */
static void nonblocking_out(void)
{
	static uint8_t want[2 * CONSOLE_OUT_SIZE + 4096], got[sizeof(want)];
	struct fake f = {0};
	struct loop l;
	struct console *c;
	unsigned long writes, waits;
	size_t n = 0, room;
	int p[2];

	if (loop_init(&l) || pipe2(p, O_CLOEXEC)) {
		CHECK(!"loop or pipe");
		return;
	}
	fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK);
	pattern(want, sizeof(want));
	c = attach(&l, &f, (struct console_host){"uart0", -1, p[1], -1, true, false}, false);
	if (!c)
		goto out;
	/* Fill the pipe and the buffer behind it, as the guest would while there is room. */
	while (n + 16 <= sizeof(want) && console_can_write(c)) {
		console_write(c, want + n, 16);
		n += 16;
		if (n % 4096 == 0)
			nap(); /* let the writer keep up, so that the pipe fills before the ring */
	}
	CHECK(n < sizeof(want)); /* the pipe and the ring fill: no room says so */
	CHECK(TEST_WAIT(atomic_load(&c->waits) >= 1, nap()));
	writes = atomic_load(&c->writes);
	waits = atomic_load(&c->waits);
	/* No event tells that nothing happens: a writer that retried would write thousands of
	 * times in this pause. */
	nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
	CHECK(atomic_load(&c->writes) <= writes + 1);
	CHECK(atomic_load(&c->waits) <= waits + 1);
	/* A UART that writes anyway fills the ring, loses the rest (counted), and returns. */
	pthread_mutex_lock(&c->olock);
	room = CONSOLE_OUT_SIZE - c->olen;
	pthread_mutex_unlock(&c->olock);
	CHECK(room < CONSOLE_OUT_SLACK);
	console_write(c, want + n, room + 10);
	n += room;
	/* Read: the writer goes on, the device hears of room, every byte arrives in order. */
	CHECK_EQ(read_all(p[0], got, n), n);
	CHECK(!memcmp(got, want, n));
	CHECK(TEST_WAIT(atomic_load(&f.rooms) >= 1, nap()));
	feed(c, &f, want + n + 10, sizeof(want) - n - 10);
	CHECK_EQ(read_all(p[0], got, sizeof(want) - n - 10), sizeof(want) - n - 10);
	CHECK(!memcmp(got, want + n + 10, sizeof(want) - n - 10));
	console_detach(c);
	CHECK_EQ(c->dropped, 10);
	free(c);
out:
	close(p[0]);
	close(p[1]);
	loop_free(&l);
}

struct drain {
	int fd;
	uint8_t *buf;
	size_t size, n;
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;
	ssize_t r;

	while (d->n < d->size && (r = read(d->fd, d->buf + d->n, d->size - d->n)) > 0)
		d->n += (size_t)r;
	return NULL;
}

/*
 * The log gets exactly what the host side gets, the same bytes in the same order, sanitized
 * alike when sanitize is on (so a log shown on a terminal is as safe as the console).
 */
static void log_copy(bool clean)
{
	static uint8_t want[3 * CONSOLE_OUT_SIZE], outbuf[sizeof(want)];
	char dir[] = "/tmp/mv-conlog-XXXXXX", path[64];
	struct drain d = {.buf = outbuf, .size = sizeof(outbuf)};
	struct fake f = {0};
	struct console *c;
	struct loop l;
	pthread_t t;
	uint8_t *logged;
	size_t n = 0;
	int p[2], fd;

	test_case("log copy, sanitize %s", clean ? "on" : "off");
	pattern(want, sizeof(want));
	for (size_t i = 0; i < sizeof(want); i += 997)
		memcpy(want + i, "\033]0;owned\a", i + 11 < sizeof(want) ? 10 : 0);
	if (!mkdtemp(dir) || loop_init(&l) || pipe2(p, O_CLOEXEC)) {
		CHECK(!"set-up");
		return;
	}
	snprintf(path, sizeof(path), "%s/console.log", dir);
	fd = console_open_file(path);
	CHECK(fd >= 0);
	d.fd = p[0];
	pthread_create(&t, NULL, drain_main, &d);
	c = attach(&l, &f, (struct console_host){"uart0", -1, p[1], fd, true, false}, clean);
	if (c) {
		feed(c, &f, want, sizeof(want));
		console_detach(c);
		free(c);
	}
	close(p[1]);
	pthread_join(t, NULL);
	logged = slurp(path, &n);
	CHECK(logged != NULL);
	CHECK_EQ(n, d.n);
	CHECK(logged && !memcmp(logged, outbuf, n));
	if (clean) {
		CHECK(n < sizeof(want) && n > sizeof(want) / 2);
		CHECK(logged && !memchr(logged, 033, n));
	} else {
		CHECK_EQ(n, sizeof(want));
		CHECK(logged && !memcmp(logged, want, n));
	}
	free(logged);
	close(fd);
	close(p[0]);
	unlink(path);
	rmdir(dir);
	loop_free(&l);
}

static bool readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/*
 * A pty: nothing attached at first (its master reports a hang-up), output is kept up to the
 * terminal's buffer and dropped after it, without the guest ever waiting; a program that
 * opens the far end reads the guest's output and types its input; when it closes it, the
 * hang-up is reported once to the loop, not again and again.
 */
static void pty_host(void)
{
	static uint8_t flood[4 * CONSOLE_OUT_SIZE];
	char name[64] = "";
	uint8_t buf[64];
	struct fake f = {0};
	struct console *c;
	struct pollfd pf;
	struct loop l;
	int m, far = -1, spins = 0;

	m = console_open_pty(name, sizeof(name));
	CHECK(m >= 0);
	CHECK(!strncmp(name, "/dev/pts/", 9));
	if (m < 0 || loop_init(&l))
		return;
	pf = (struct pollfd){.fd = m, .events = POLLOUT};
	CHECK(poll(&pf, 1, 0) == 1 && (pf.revents & POLLHUP)); /* nothing attached */
	c = attach(&l, &f, (struct console_host){"uart1", m, m, -1, false, true}, false);
	if (!c)
		goto out;
	/* Nothing attached: a flood never makes the guest wait for long; most of it is dropped. */
	pattern(flood, sizeof(flood));
	feed(c, &f, flood, sizeof(flood));
	CHECK(TEST_WAIT(({
				pthread_mutex_lock(&c->olock);
				bool empty = !c->olen;
				pthread_mutex_unlock(&c->olock);
				empty;
			}),
			nap()));
	CHECK(c->unattached > sizeof(flood) / 2);
	/* The loop hears of the hang-up at most once. */
	for (int i = 0; i < 5; i++)
		spins += loop_poll(&l, 0);
	CHECK(spins <= 1);
	/* Attached: what the terminal kept, then the guest's output; typed input reaches it. */
	far = open(name, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	CHECK(far >= 0);
	while (readable(far, 0) && read(far, buf, sizeof(buf)) > 0)
		;
	console_write(c, (const uint8_t *)"hello\r\n", 7);
	CHECK_EQ(read_all(far, buf, 7), 7);
	CHECK(!memcmp(buf, "hello\r\n", 7));
	CHECK_EQ(write(far, "typed", 5), 5);
	CHECK(TEST_WAIT(f.got >= 5, loop_poll(&l, 100)));
	CHECK(f.got == 5 && !memcmp(f.in, "typed", 5));
	/* Detached again: one hang-up for the loop, then quiet; output is dropped, not waited on.
	 */
	close(far);
	far = -1;
	loop_poll(&l, 100);
	spins = 0;
	for (int i = 0; i < 5; i++)
		spins += loop_poll(&l, 0);
	CHECK_EQ(spins, 0);
	console_detach(c);
	free(c);
out:
	if (far >= 0)
		close(far);
	close(m);
	loop_free(&l);
}

/*
 * Input the device has no room for waits off the loop: a pipe whose writer left meanwhile (a
 * hang-up, which epoll reports whatever is asked for) cannot make the loop spin; the rest is
 * delivered once the device has room, then the end of the input is seen.
 */
static void input_paused(void)
{
	struct fake f = {0};
	struct console *c;
	struct loop l;
	int p[2], spins = 0;

	if (loop_init(&l) || pipe2(p, O_CLOEXEC)) {
		CHECK(!"loop or pipe");
		return;
	}
	c = attach(&l, &f, (struct console_host){"uart0", p[0], -1, -1, false, false}, false);
	f.cap = 4;
	CHECK_EQ(write(p[1], "0123456789", 10), 10);
	close(p[1]);
	if (c) {
		CHECK(TEST_WAIT(f.got == 4, loop_poll(&l, 100)));
		for (int i = 0; i < 5; i++)
			spins += loop_poll(&l, 0);
		CHECK_EQ(spins, 0);
		f.cap = sizeof(f.in);
		console_room(c);
		CHECK(TEST_WAIT(f.got == 10, loop_poll(&l, 100)));
		CHECK(!memcmp(f.in, "0123456789", 10));
		CHECK(TEST_WAIT(c->in_eof, loop_poll(&l, 100)));
		console_detach(c);
		free(c);
	}
	close(p[0]);
	loop_free(&l);
}

/* Console files: a FIFO or a directory is refused, never waited on. */
static void file_kinds(void)
{
	char dir[] = "/tmp/mv-confile-XXXXXX", fifo[64];

	if (!mkdtemp(dir))
		return;
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	CHECK(mkfifo(fifo, 0600) == 0);
	CHECK_EQ(console_open_file(fifo), -ENXIO); /* no reader: refused at once */
	CHECK(console_open_file(dir) < 0);
	unlink(fifo);
	rmdir(dir);
}

/* --- through the UART device ---------------------------------------------------------------- */

/* A machine whose uart0 is realized on a VM with no KVM behind it (no interrupt is raised). */
struct board {
	struct machine m;
	struct vm vm;
	struct device *dev;
	struct bus *bus;
	uint64_t base;
	char said[256]; /* what realize printed */
	bool built, up; /* the VM's loop and buses exist; uart0 is realized */
};

/* Realize b's uart0 with stderr captured into b->said. */
static int realize_said(struct board *b)
{
	int p[2], saved, err;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	err = b->dev->ops->realize(b->dev, &b->vm);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	n = read(p[0], b->said, sizeof(b->said) - 1);
	b->said[n > 0 ? n : 0] = 0;
	close(p[0]);
	return err;
}

/* Bring uart0 of the machine m (loaded to run) up; false (checked) if it did not. */
static bool board_up(struct board *b)
{
	struct hw_desc hw = {0};

	for (size_t i = 0; i < b->m.ndevices; i++)
		if (!strcmp(b->m.devices[i].name, "uart0"))
			b->dev = &b->m.devices[i];
	CHECK(b->dev != NULL);
	b->vm.vm_fd = b->vm.kvm_fd = -1;
	if (!b->dev || loop_init(&b->vm.loop))
		return false;
	bus_init(&b->vm.bus);
	bus_init(&b->vm.pio);
	b->built = true;
	b->vm.m = &b->m;
	b->dev->ops->hw(b->dev, &hw);
	b->base = hw.base;
	b->bus = hw.io_port ? &b->vm.pio : &b->vm.bus;
	CHECK_EQ(realize_said(b), 0);
	b->up = true;
	return true;
}

static bool board_load(struct board *b, const char *file, char *const *sets, size_t n)
{
	memset(b, 0, sizeof(*b));
	if (machine_load(&b->m, file, sets, n, true)) {
		CHECK(!"machine_load");
		return false;
	}
	return board_up(b);
}

static void board_down(struct board *b)
{
	if (b->up)
		b->dev->ops->unrealize(b->dev);
	b->up = false;
	machine_free(&b->m);
	if (b->built) {
		bus_free(&b->vm.bus);
		bus_free(&b->vm.pio);
		loop_free(&b->vm.loop);
	}
	b->built = false;
}

static uint8_t reg_rd(struct board *b, unsigned reg)
{
	uint8_t v = 0;

	bus_access(b->bus, b->base + reg, &v, 1, false);
	return v;
}

static void reg_wr(struct board *b, unsigned reg, uint8_t v)
{
	bus_access(b->bus, b->base + reg, &v, 1, true);
}

/* The guest writes s as a polling driver does: each byte once THRE says there is room. */
static void guest_puts(struct board *b, const char *s)
{
	for (; *s; s++) {
		if (!TEST_WAIT(reg_rd(b, 5) & 0x20, nap()))
			return;
		reg_wr(b, 0, (uint8_t)*s);
	}
}

/* Does the file at path hold exactly want? */
static bool holds(const char *path, const char *want)
{
	size_t n;
	uint8_t *buf = slurp(path, &n);
	bool same = buf && n == strlen(want) && !memcmp(buf, want, n);

	if (!same)
		printf("    %s holds '%s', not '%s'\n", path, buf ? (char *)buf : "(nothing)",
		       want);
	free(buf);
	return same;
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	if (fd >= 0)
		close(fd);
}

/* host = file: what the guest wrote, the file emptied first (or kept with append = on). */
static void device_file(bool append)
{
	char dir[] = "/tmp/mv-confile-XXXXXX", out[64], set[96];
	char *sets[] = {"uart0.host=file", set, append ? "uart0.append=on" : "uart0.sanitize=off"};
	struct board b;

	test_case("host = file, append = %s", append ? "on" : "off");
	if (!mkdtemp(dir))
		return;
	snprintf(out, sizeof(out), "%s/console.txt", dir);
	snprintf(set, sizeof(set), "uart0.path=%s", out);
	write_file(out, "before\n");
	memset(&b, 0, sizeof(b));
	if (machine_load(&b.m, "machines/rpi5.ini", sets, 3, true) == 0) {
		CHECK(holds(out, "before\n")); /* loading opens it, only the start empties it */
		if (board_up(&b)) {
			CHECK(b.said[0] == 0);
			CHECK(append ? holds(out, "before\n") : holds(out, ""));
			guest_puts(&b, "Booting Linux\r\nmicrovm:/# ");
		}
	} else {
		CHECK(!"machine_load");
	}
	board_down(&b);
	CHECK(holds(out, append ? "before\nBooting Linux\r\nmicrovm:/# "
				: "Booting Linux\r\nmicrovm:/# "));
	unlink(out);
	rmdir(dir);
}

/* host = off: the transmitter never waits, the output goes nowhere but to the log if any. */
static void device_off(void)
{
	char dir[] = "/tmp/mv-conoff-XXXXXX", log[64], set[96];
	char *sets[] = {"uart0.host=off", set};
	struct board b;
	bool never_busy = true;

	if (!mkdtemp(dir))
		return;
	snprintf(log, sizeof(log), "%s/log", dir);
	snprintf(set, sizeof(set), "uart0.log=%s", log);
	if (board_load(&b, "machines/rpi5.ini", sets, 1)) {
		for (int i = 0; i < 3 * CONSOLE_OUT_SIZE; i++) {
			never_busy &= (reg_rd(&b, 5) & 0x60) == 0x60;
			reg_wr(&b, 0, 'x');
		}
		CHECK(never_busy);
	}
	board_down(&b);
	CHECK(access(log, F_OK) != 0); /* (no log asked for: none written) */
	if (board_load(&b, "machines/rpi5.ini", sets, 2))
		guest_puts(&b, "only in the log\n");
	board_down(&b);
	CHECK(holds(log, "only in the log\n"));
	unlink(log);
	rmdir(dir);
}

/* Open the pty that realize named ("microvm: uart0 console on /dev/pts/N"): its fd or -1. */
static int open_said_pty(const struct board *b)
{
	const char *at = strstr(b->said, "microvm: uart0 console on /dev/pts/");
	char name[64];

	CHECK(at != NULL);
	if (!at || sscanf(at + strlen("microvm: uart0 console on "), "%63s", name) != 1) {
		printf("    realize said '%s'\n", b->said);
		return -1;
	}
	return open(name, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
}

/* host = pty: the path is printed; the guest's output is read there, typed input comes back. */
static void device_pty(void)
{
	char *sets[] = {"uart0.host=pty"};
	struct board b;
	char buf[16] = "";
	int far = -1;

	if (board_load(&b, "machines/rpi5.ini", sets, 1))
		far = open_said_pty(&b);
	CHECK(far >= 0);
	if (far >= 0) {
		guest_puts(&b, "login: ");
		CHECK_EQ(read_all(far, (uint8_t *)buf, 7), 7);
		CHECK(!memcmp(buf, "login: ", 7));
		CHECK_EQ(write(far, "root\r", 5), 5);
		CHECK(TEST_WAIT(reg_rd(&b, 5) & 0x01, loop_poll(&b.vm.loop, 100)));
		for (int i = 0; i < 5 && (reg_rd(&b, 5) & 0x01); i++)
			buf[i] = (char)reg_rd(&b, 0);
		CHECK(!memcmp(buf, "root\r", 5));
		close(far);
	}
	board_down(&b);
}

/*
 * host = stdio with a log: the log holds what stdout got; stdin's input reaches the guest.
 * (The test's own stdin and stdout are pipes meanwhile: nothing is checked until they are
 * back.)
 */
static void device_stdio_log(void)
{
	const char *said = "[    0.000000] Booting Linux\r\n";
	char dir[] = "/tmp/mv-constdio-XXXXXX", log[64], set[96], got[128] = "", typed[8] = "";
	char *sets[] = {set};
	struct board b;
	int in[2], out[2], save_in, save_out;
	bool loaded;
	size_t n;

	if (!mkdtemp(dir) || pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) {
		CHECK(!"set-up");
		return;
	}
	snprintf(log, sizeof(log), "%s/console.log", dir);
	snprintf(set, sizeof(set), "uart0.log=%s", log);
	fflush(stdout);
	save_in = dup(STDIN_FILENO);
	save_out = dup(STDOUT_FILENO);
	dup2(in[0], STDIN_FILENO);
	dup2(out[1], STDOUT_FILENO);
	loaded = board_load(&b, "machines/rpi5.ini", sets, 1);
	if (loaded) {
		guest_puts(&b, said);
		if (write(in[1], "ls\n", 3) == 3)
			for (int i = 0; i < 600 && !(reg_rd(&b, 5) & 0x01); i++)
				loop_poll(&b.vm.loop, 100);
		for (int i = 0; i < 3 && (reg_rd(&b, 5) & 0x01); i++)
			typed[i] = (char)reg_rd(&b, 0);
	}
	board_down(&b);
	fflush(stdout);
	dup2(save_in, STDIN_FILENO);
	dup2(save_out, STDOUT_FILENO);
	close(save_in);
	close(save_out);
	close(out[1]);
	n = read_all(out[0], (uint8_t *)got, sizeof(got) - 1);
	got[n] = 0;
	CHECK(loaded);
	CHECK_STR(got, said);
	CHECK(holds(log, said));
	CHECK_STR(typed, "ls\n");
	close(out[0]);
	close(in[0]);
	close(in[1]);
	unlink(log);
	rmdir(dir);
}

/*
 * A restore re-creates the host side from the machine's description and its overrides:
 * the UART's registers come from the state, its output goes where the restore says.
 */
static void restore_hosts(void)
{
	const char *file =
		kvm_guest_arch == &arch_arm64 ? "machines/rpi5.ini" : "machines/x86_64.ini";
	char dir[] = "/tmp/mv-conrest-XXXXXX", out[64], log[64], setp[96], setl[96];
	char *off[] = {"uart0.host=off"};
	struct machine_override ovs[3][2] = {
		{{.arg = "uart0.host=file", .origin = "--set"}, {.arg = setp, .origin = "--set"}},
		{{.arg = "uart0.host=pty", .origin = "--set"}, {.arg = setl, .origin = "--set"}},
		{{.arg = "uart0.host=off", .origin = "--set"}, {.arg = setl, .origin = "--set"}},
	};
	struct snapshot_in in = {.state_path = "test.state"};
	struct snap *st = snap_new();
	struct snap_sec *sec = snap_add(st, "uart0"), *s;
	struct board a, b;
	char *text = NULL, buf[16] = "";
	size_t len = 0;
	FILE *f;

	if (!kvm_guest_arch || !mkdtemp(dir))
		goto out; /* (a restore takes a machine of the architecture this host's KVM runs) */
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(log, sizeof(log), "%s/log", dir);
	snprintf(setp, sizeof(setp), "uart0.path=%s", out);
	snprintf(setl, sizeof(setl), "uart0.log=%s", log);
	/* The original: the guest set the scratch register; its state and machine are saved. */
	if (board_load(&a, file, off, 1)) {
		reg_wr(&a, 7, 0x5a);
		CHECK_EQ(a.dev->ops->save(a.dev, sec), 0);
		f = open_memstream(&text, &len);
		CHECK(f && cfg_dump(&a.m.cfg, f, NULL, NULL) == 0);
		if (f)
			fclose(f);
	}
	in.state = snap_new();
	in.ram_size = a.m.ram_size;
	s = snap_add(in.state, "snapshot");
	CHECK(s && snap_put_u64(s, "vcpus", a.m.vcpus) == 0);
	s = snap_add(in.state, "machine");
	CHECK(s && text && snap_put_text(s, "ini", text) == 0);
	board_down(&a);
	for (int i = 0; i < 3; i++) {
		test_case("restore with --set %s %s", ovs[i][0].arg, ovs[i][1].arg);
		memset(&b, 0, sizeof(b));
		if (snapshot_machine(&in, ovs[i], 2, &b.m)) {
			CHECK(!"snapshot_machine");
			machine_free(&b.m);
			continue;
		}
		if (board_up(&b)) {
			int far = i == 1 ? open_said_pty(&b) : -1;

			CHECK_EQ(b.dev->ops->restore(b.dev, sec), 0);
			CHECK_EQ(reg_rd(&b, 7), 0x5a);
			guest_puts(&b, "restored\n");
			if (i == 1) {
				CHECK_EQ(read_all(far, (uint8_t *)buf, 9), 9);
				CHECK(!memcmp(buf, "restored\n", 9));
			}
			if (far >= 0)
				close(far);
		}
		board_down(&b);
		CHECK(holds(i == 0 ? out : log, "restored\n"));
		unlink(out);
		unlink(log);
	}
	rmdir(dir);
out:
	free(text);
	snap_free(in.state);
	snap_free(st);
}

void test_console(void)
{
	TEST_RUN(nonblocking_out);
	log_copy(false);
	log_copy(true);
	TEST_RUN(pty_host);
	TEST_RUN(input_paused);
	TEST_RUN(file_kinds);
	device_file(false);
	device_file(true);
	TEST_RUN(device_off);
	TEST_RUN(device_pty);
	TEST_RUN(device_stdio_log);
	TEST_RUN(restore_hosts);
}
