/* uart: a 16550A-compatible serial port with a level-triggered interrupt. */
#include "devices/uart.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "arch.h"
#include "array.h"
#include "config.h"
#include "console.h"
#include "irq.h"
#include "log.h"
#include "machine.h"
#include "snapshot/devstate.h"
#include "timeline.h"
#include "vm.h"

#define UART_REGION_SIZE 0x1000
#define UART_PORTS	 8
#define UART_CLOCK	 1843200
#define FIFO_SIZE	 64

/* Register offsets (reg-shift 0). */
enum { RBR_THR_DLL = 0, IER_DLM = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

#define IER_RDI	 0x01 /* received data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI	 0x08 /* modem status */

#define IIR_NO_INT 0x01
#define IIR_MSI	   0x00
#define IIR_THRI   0x02
#define IIR_RDI	   0x04
#define IIR_RLSI   0x06
#define IIR_FIFO   0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02

#define LCR_DLAB 0x80

#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR	 0x01
#define LSR_OE	 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI	0x40
#define MSR_DCD 0x80

struct uart {
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	bool thri_pending; /* THR-empty interrupt raised and not yet acknowledged */
	uint8_t fifo[FIFO_SIZE];
	unsigned head, count;
	int level;
	void (*irq)(void *opaque, int level);
	void (*out)(void *opaque, uint8_t byte);
	bool (*tx_ready)(void *opaque);
	void *opaque;
};

/* Where the UART's host side is ([uartN] host). */
enum uart_host { HOST_STDIO, HOST_FILE, HOST_PTY, HOST_OFF };
static const char *const host_names[] = {"stdio", "file", "pty", "off", NULL};

/* Per-instance configuration and run-time state of the device. */
struct uart_dev {
	uint64_t base, size;
	bool io_port; /* base is an I/O port (x86), not an address */
	uint32_t irq;
	bool console;  /* the guest's console (/chosen/stdout-path, console=ttyS<N>) */
	int host;      /* enum uart_host */
	bool host_set; /* host is written, not the default */
	char *path;    /* host = file: where the guest's output goes */
	char *log;     /* a copy of the guest's output, or NULL */
	bool append;   /* keep what path and log hold (else emptied when the VM starts) */
	/* Opened for a run when the machine is loaded (a restarted guest keeps them); -1. */
	int out_fd, log_fd, pty_fd;
	char pty_name[64];
	bool attached; /* con is connected (a host side other than off, or a log) */
	struct uart *uart;
	struct vm *vm;
	struct console con;
};

/* Can the transmitter take a byte (the host side has room for it)? */
static bool tx_ready(const struct uart *u)
{
	return !u->tx_ready || (u->mcr & MCR_LOOP) || u->tx_ready(u->opaque);
}

static uint8_t pending_iir(const struct uart *u)
{
	if ((u->ier & IER_RLSI) && (u->lsr & LSR_OE))
		return IIR_RLSI;
	if ((u->ier & IER_RDI) && u->count)
		return IIR_RDI;
	if ((u->ier & IER_THRI) && u->thri_pending && tx_ready(u))
		return IIR_THRI;
	return IIR_NO_INT;
}

/* Recompute the interrupt line after any state change (lock held). */
static void update_irq(struct uart *u)
{
	int level = pending_iir(u) != IIR_NO_INT;

	if (level != u->level) {
		u->level = level;
		u->irq(u->opaque, level);
	}
}

static size_t fifo_push(struct uart *u, const uint8_t *buf, size_t n)
{
	size_t i;

	for (i = 0; i < n && u->count < FIFO_SIZE; i++)
		u->fifo[(u->head + u->count++) % FIFO_SIZE] = buf[i];
	if (u->count)
		u->lsr |= LSR_DR;
	return i;
}

static uint8_t read_reg(struct uart *u, unsigned reg)
{
	uint8_t v = 0;

	switch (reg) {
	case RBR_THR_DLL:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		if (u->count) {
			v = u->fifo[u->head];
			u->head = (u->head + 1) % FIFO_SIZE;
			if (--u->count == 0)
				u->lsr &= ~LSR_DR;
		}
		return v;
	case IER_DLM:
		return u->lcr & LCR_DLAB ? u->dlm : u->ier;
	case IIR_FCR:
		v = pending_iir(u);
		if (v == IIR_THRI)
			u->thri_pending = false; /* reading IIR acknowledges THRE */
		return v | (u->fcr & FCR_ENABLE ? IIR_FIFO : 0);
	case LCR:
		return u->lcr;
	case MCR:
		return u->mcr;
	case LSR:
		/* The holding register stays full while the host is not taking output. */
		v = tx_ready(u) ? u->lsr : u->lsr & ~(LSR_THRE | LSR_TEMT);
		u->lsr &= ~LSR_OE;
		return v;
	case MSR:
		if (u->mcr & MCR_LOOP)
			return (u->mcr & MCR_DTR ? MSR_DSR : 0) | (u->mcr & MCR_RTS ? MSR_CTS : 0) |
			       (u->mcr & MCR_OUT1 ? MSR_RI : 0) | (u->mcr & MCR_OUT2 ? MSR_DCD : 0);
		return u->msr;
	default:
		return u->scr;
	}
}

static void write_reg(struct uart *u, unsigned reg, uint8_t v)
{
	switch (reg) {
	case RBR_THR_DLL:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
		} else if (u->mcr & MCR_LOOP) {
			if (!fifo_push(u, &v, 1))
				u->lsr |= LSR_OE;
			u->thri_pending = true;
		} else {
			/*
			 * Sent at once: the holding register is empty again. A driver that did
			 * not wait for THRE still gets its burst out while there is room (THRE
			 * asks for more room than a 16-byte burst needs); only a full host
			 * buffer drops bytes, and the console counts them.
			 */
			u->out(u->opaque, v);
			u->thri_pending = true;
		}
		break;
	case IER_DLM:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
		} else {
			if (!(u->ier & IER_THRI) && (v & IER_THRI))
				u->thri_pending = true; /* enabling THRI with THR empty raises it */
			u->ier = v & 0x0f;
		}
		break;
	case IIR_FCR:
		u->fcr = v & (FCR_ENABLE | 0xc0);
		if (v & FCR_CLEAR_RX) {
			u->count = 0;
			u->lsr &= ~LSR_DR;
		}
		break;
	case LCR:
		u->lcr = v;
		break;
	case MCR:
		u->mcr = v & 0x1f;
		break;
	case LSR:
	case MSR:
		break; /* read-only */
	default:
		u->scr = v;
	}
}

void uart_access(struct uart *u, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	if (offset >= 8 || len != 1) {
		/* 8-bit registers only (reg-io-width 1): wider or stray accesses read as zero. */
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&u->lock);
	if (is_write)
		write_reg(u, offset, data[0]);
	else
		data[0] = read_reg(u, offset);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

size_t uart_receive(struct uart *u, const uint8_t *buf, size_t n)
{
	size_t got;

	pthread_mutex_lock(&u->lock);
	got = (u->mcr & MCR_LOOP) ? 0 : fifo_push(u, buf, n);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return got;
}

void uart_tx_ready(struct uart *u)
{
	pthread_mutex_lock(&u->lock);
	u->thri_pending = true;
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

struct uart *uart_new(void (*irq)(void *opaque, int level), void (*out)(void *opaque, uint8_t byte),
		      bool (*ready)(void *opaque), void *opaque)
{
	struct uart *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	pthread_mutex_init(&u->lock, NULL);
	u->lsr = LSR_THRE | LSR_TEMT;
	u->msr = MSR_DCD | MSR_DSR | MSR_CTS;
	u->mcr = MCR_OUT2;
	u->irq = irq;
	u->out = out;
	u->tx_ready = ready;
	u->opaque = opaque;
	return u;
}

/* The registers a snapshot keeps, with the bits the guest can set in each. */
static const struct {
	const char *name;
	size_t off;
	uint8_t mask;
} regs[] = {
	{"ier", offsetof(struct uart, ier), 0x0f}, {"lcr", offsetof(struct uart, lcr), 0xff},
	{"mcr", offsetof(struct uart, mcr), 0x1f}, {"lsr", offsetof(struct uart, lsr), 0xff},
	{"scr", offsetof(struct uart, scr), 0xff}, {"dll", offsetof(struct uart, dll), 0xff},
	{"dlm", offsetof(struct uart, dlm), 0xff}, {"fcr", offsetof(struct uart, fcr), 0xc1},
};

#define LSR_AT 3 /* regs[] index of "lsr" */

static uint8_t *reg_at(struct uart *u, unsigned i)
{
	return (uint8_t *)u + regs[i].off;
}

int uart_save(struct uart *u, struct snap_sec *sec)
{
	uint8_t fifo[FIFO_SIZE];
	int err = 0;

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; !err && i < ARRAY_SIZE(regs); i++)
		err = snap_put_u64(sec, regs[i].name, *reg_at(u, i));
	err = err ?: snap_put_u64(sec, "thri_pending", u->thri_pending);
	for (unsigned i = 0; i < u->count; i++)
		fifo[i] = u->fifo[(u->head + i) % FIFO_SIZE];
	err = err ?: snap_put_bytes(sec, "fifo", fifo, u->count);
	pthread_mutex_unlock(&u->lock);
	return err;
}

/*
 * The line status as the model keeps it: THRE and TEMT always (the host's room is looked at
 * when it is read), DR exactly while the FIFO holds bytes, OE until it is read.
 */
static int check_lsr(const struct snap_sec *sec, uint8_t lsr, size_t count)
{
	if ((lsr & ~(LSR_DR | LSR_OE)) != (LSR_THRE | LSR_TEMT) || !(lsr & LSR_DR) != !count)
		return devstate_bad(sec, "lsr", "0x%02x with %zu bytes received", lsr, count);
	return 0;
}

int uart_restore(struct uart *u, const struct snap_sec *sec)
{
	uint64_t v[ARRAY_SIZE(regs)];
	const void *fifo;
	size_t count;
	bool thri;
	int err = 0;

	for (unsigned i = 0; !err && i < ARRAY_SIZE(regs); i++) {
		err = snap_need_u64(sec, regs[i].name, 0xff, &v[i]);
		if (!err && (v[i] & ~regs[i].mask))
			err = devstate_bad(sec, regs[i].name, "0x%02llx: bits the guest cannot set",
					   (unsigned long long)v[i]);
	}
	err = err ?: devstate_need_bool(sec, "thri_pending", &thri);
	err = err ?: devstate_need_blob_max(sec, "fifo", FIFO_SIZE, &fifo, &count);
	err = err ?: check_lsr(sec, v[LSR_AT], count);
	if (err)
		return err;
	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < ARRAY_SIZE(regs); i++)
		*reg_at(u, i) = v[i];
	u->thri_pending = thri;
	memcpy(u->fifo, fifo, count);
	u->head = 0;
	u->count = count;
	update_irq(u); /* the line as the registers say */
	pthread_mutex_unlock(&u->lock);
	return 0;
}

void uart_free(struct uart *u)
{
	if (!u)
		return;
	pthread_mutex_destroy(&u->lock);
	free(u);
}

/* --- the device: configuration, console wiring, device tree --- */

/*
 * A file the console writes (path or log, named at e): an existing one must be a regular
 * file this user may write; for a new one, its directory must exist and take it. Nothing is
 * created here. 0, or -1 (said at e).
 */
static int check_out_file(struct cfg *c, const struct cfg_entry *e, const char *path)
{
	struct stat st;
	char *copy, *dir;
	int err = 0;

	if (stat(path, &st) == 0) {
		if (cfg_need_file(c, e, path, false))
			return -1;
		if (access(path, W_OK) == 0)
			return 0;
		cfg_error(c, e, NULL, "cannot write '%s': %s", path, strerror(errno));
		return -1;
	}
	if (errno != ENOENT) {
		cfg_error(c, e, NULL, "'%s': %s", path, strerror(errno));
		return -1;
	}
	copy = strdup(path);
	BUG_ON(!copy);
	dir = dirname(copy);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		cfg_error(c, e, NULL, "cannot create '%s': '%s' is not an existing directory", path,
			  dir);
		err = -1;
	} else if (access(dir, W_OK | X_OK) < 0) {
		cfg_error(c, e, NULL, "cannot create '%s' in '%s': %s", path, dir, strerror(errno));
		err = -1;
	}
	free(copy);
	return err;
}

/* For a run: create the pty, open the files. 0, or -1 (said at the key). */
static int open_host(struct device *dev, struct cfg *c)
{
	struct uart_dev *d = dev->priv;
	const char *const keys[] = {"path", "log"};
	const char *paths[] = {d->path, d->log};
	int *fds[] = {&d->out_fd, &d->log_fd};

	if (d->host == HOST_PTY) {
		d->pty_fd = console_open_pty(d->pty_name, sizeof(d->pty_name));
		if (d->pty_fd < 0) {
			cfg_error(c, cfg_get(c, dev->name, "host"), NULL,
				  "cannot create a pseudo-terminal: %s", strerror(-d->pty_fd));
			return -1;
		}
	}
	for (size_t i = 0; i < 2; i++) {
		if (!paths[i])
			continue;
		*fds[i] = console_open_file(paths[i]);
		if (*fds[i] < 0) {
			cfg_error(c, cfg_get(c, dev->name, keys[i]), NULL, "cannot open '%s': %s",
				  paths[i],
				  *fds[i] == -EINVAL ? "not a regular file" : strerror(-*fds[i]));
			return -1;
		}
	}
	return 0;
}

/* Is file one of the files other (a UART configured before) writes? Its key, or NULL. */
static const char *file_of(const struct uart_dev *other, const char *file)
{
	if (other->path && !strcmp(other->path, file))
		return "path";
	if (other->log && !strcmp(other->log, file))
		return "log";
	return NULL;
}

/*
 * The host side: its keys agree, it shares stdin/stdout and its files with no other UART,
 * its files can be written (nothing is opened yet). 0, or -1 (said).
 */
static int configure_host(struct device *dev, struct machine *m)
{
	struct cfg *c = &m->cfg;
	struct uart_dev *d = dev->priv;
	struct cfg_entry *host = cfg_get(c, dev->name, "host");
	struct cfg_entry *path = cfg_get(c, dev->name, "path"), *log = cfg_get(c, dev->name, "log");
	int err = 0;

	d->host_set = host != NULL;
	if (d->host == HOST_FILE && !d->path) {
		cfg_error(c, host, NULL, "file needs path = FILE (where the guest's output goes)");
		err = -1;
	} else if (d->host != HOST_FILE && d->path) {
		cfg_error(c, path, NULL, "only with host = file (host is %s)", host_names[d->host]);
		err = -1;
	}
	if (d->log && d->path && !strcmp(d->log, d->path)) {
		cfg_error(c, log, NULL, "'%s' is this UART's path already", d->log);
		err = -1;
	}
	if (cfg_get(c, dev->name, "append") && !d->path && !d->log) {
		cfg_error(c, cfg_get(c, dev->name, "append"), NULL, "only with path or log");
		err = -1;
	}
	for (size_t i = 0; i < m->ndevices; i++) {
		const struct device *o = &m->devices[i];
		const struct uart_dev *od = o->priv;
		const char *key;

		if (o == dev || o->ops != &uart_ops || !od)
			continue;
		/* (two consoles, each on stdio by default, are told they are two consoles) */
		if (d->host == HOST_STDIO && od->host == HOST_STDIO && (host || od->host_set)) {
			cfg_error(c, host, dev->name,
				  "stdin and stdout are [%s]'s already: one UART at most on stdio "
				  "(host = file, pty or off for this one)",
				  o->name);
			err = -1;
		}
		if (d->path && (key = file_of(od, d->path))) {
			cfg_error(c, path, NULL, "'%s' is [%s]'s %s already", d->path, o->name,
				  key);
			err = -1;
		}
		if (d->log && (key = file_of(od, d->log))) {
			cfg_error(c, log, NULL, "'%s' is [%s]'s %s already", d->log, o->name, key);
			err = -1;
		}
	}
	if (!err && d->path)
		err |= check_out_file(c, path, d->path);
	if (!err && d->log)
		err |= check_out_file(c, log, d->log);
	return err;
}

static int uart_configure(struct device *dev, struct machine *m)
{
	struct uart_dev *d = calloc(1, sizeof(*d));
	struct cfg *c = &m->cfg;
	bool console_default = m->console == NULL;
	int err = 0, herr = 0;

	if (!d)
		return -1;
	dev->priv = d;
	d->out_fd = d->log_fd = d->pty_fd = -1;
	err |= cfg_u64(c, dev->name, "base", &d->base, 0, CFG_REQUIRED);
	err |= cfg_u32(c, dev->name, "irq", &d->irq, 0, 0, 1019, CFG_REQUIRED);
	err |= cfg_bool(c, dev->name, "console", &d->console, console_default);
	err |= cfg_bool(c, dev->name, "sanitize", &d->con.sanitize, false);
	herr |= cfg_enum(c, dev->name, "host", host_names, &d->host,
			 d->console ? HOST_STDIO : HOST_OFF);
	herr |= cfg_path(c, dev->name, "path", &d->path, 0);
	herr |= cfg_path(c, dev->name, "log", &d->log, 0);
	herr |= cfg_bool(c, dev->name, "append", &d->append, false);
	/* (with a bad host key, whether the others fit it cannot be told) */
	herr = herr ?: configure_host(dev, m);
	if (err)
		return -1;
	/* Where the architecture has I/O ports (x86), the 8 registers are ports there. */
	d->io_port = m->arch->ioports != 0;
	d->size = d->io_port ? UART_PORTS : UART_REGION_SIZE;
	if (d->io_port && d->base > m->arch->ioports - d->size) {
		cfg_error(c, cfg_get(c, dev->name, "base"), dev->name,
			  "I/O port 0x%llx: ports end at 0x%x", (unsigned long long)d->base,
			  m->arch->ioports - 1);
		err = -1;
	} else if (!d->io_port) {
		err |= alloc_region(&m->alloc, dev->name, "registers", d->base, d->size,
				    cfg_get(c, dev->name, "base"));
		if (!err)
			alloc_region_irqs(&m->alloc, dev->name, d->irq, 1);
	}
	err |= alloc_irqs(&m->alloc, dev->name, d->irq, 1, cfg_get(c, dev->name, "irq"));
	if (d->console)
		err |= machine_set_console(m, dev);
	if (err || herr)
		return -1;
	/* For a run, the host side opens now: a restarted guest (on_reboot) keeps it. */
	return m->run ? open_host(dev, c) : 0;
}

static void uart_describe(const struct device *dev, FILE *out)
{
	const struct uart_dev *d = dev->priv;

	fprintf(out, "  %s: ns16550a at %s0x%llx, irq %u%s, host %s%s%s", dev->name,
		d->io_port ? "I/O port " : "", (unsigned long long)d->base, d->irq,
		d->console ? ", console" : "", host_names[d->host],
		d->host == HOST_STDIO ? " (stdin/stdout)"
		: d->path	      ? " "
				      : "",
		d->path ? d->path : "");
	if (d->log)
		fprintf(out, ", log %s", d->log);
	if (d->append)
		fprintf(out, ", appending");
	fprintf(out, "%s\n", d->con.sanitize ? ", control sequences stripped" : "");
}

static void uart_irq(void *opaque, int level)
{
	struct uart_dev *d = opaque;

	irq_line(&d->vm->irq, d->irq, level);
}

static void uart_out(void *opaque, uint8_t byte)
{
	struct uart_dev *d = opaque;

	if (d->console)
		timeline_mark(TL_FIRST_CONSOLE_OUTPUT);
	if (d->attached)
		console_write(&d->con, &byte, 1);
}

static bool uart_tx_room(void *opaque)
{
	struct uart_dev *d = opaque;

	return !d->attached || console_can_write(&d->con);
}

/* The console's writer made room: the transmitter is empty again (writer thread). */
static void uart_out_room(void *dev)
{
	struct uart_dev *d = dev;

	uart_tx_ready(d->uart);
}

static void uart_mmio(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct uart_dev *d = opaque;

	uart_access(d->uart, offset, data, len, is_write);
	if (!is_write && offset == RBR_THR_DLL && d->attached)
		console_room(&d->con);
}

static size_t uart_push(void *opaque, const uint8_t *buf, size_t n)
{
	struct uart_dev *d = opaque;

	return uart_receive(d->uart, buf, n);
}

/* Ctrl-A x on the console: stop the VM as a signal from the host would. */
static void uart_quit(void *opaque)
{
	struct uart_dev *d = opaque;

	vm_stop(d->vm, VM_STOPPED);
}

/*
 * A run's first boot empties the files (append = off); a guest restarted by on_reboot goes on
 * after what the boot before wrote (the same open file, inherited, its offset moved on).
 */
static void start_file(const struct device *dev, int fd, bool append)
{
	if (fd >= 0 && !append && lseek(fd, 0, SEEK_CUR) == 0 && ftruncate(fd, 0) < 0)
		log_warn("%s: cannot empty its console file: %s", dev->name, strerror(errno));
}

static int uart_realize(struct device *dev, struct vm *vm)
{
	struct uart_dev *d = dev->priv;
	struct console_host h = {.name = dev->name, .in_fd = -1, .out_fd = -1, .log_fd = d->log_fd};
	int err;

	d->vm = vm;
	d->con.room_fd = -1;
	d->uart = uart_new(uart_irq, uart_out, uart_tx_room, d);
	if (!d->uart)
		return -ENOMEM;
	err = bus_register(d->io_port ? &vm->pio : &vm->bus, d->base, d->size, uart_mmio, d,
			   dev->name);
	if (err)
		return err;
	if (d->host == HOST_STDIO) {
		h.in_fd = STDIN_FILENO;
		h.out_fd = STDOUT_FILENO;
		h.term = true;
	} else if (d->host == HOST_FILE) {
		h.out_fd = d->out_fd;
	} else if (d->host == HOST_PTY) {
		h.in_fd = h.out_fd = d->pty_fd;
		h.pty = true;
	}
	if (h.in_fd < 0 && h.out_fd < 0 && h.log_fd < 0)
		return 0; /* off: the guest's output is dropped, it gets no input */
	start_file(dev, d->out_fd, d->append);
	start_file(dev, d->log_fd, d->append);
	if (d->host == HOST_PTY)
		fprintf(stderr, "microvm: %s%s on %s\n", dev->name, d->console ? " console" : "",
			d->pty_name);
	d->attached = true;
	return console_attach(&d->con, &vm->loop, &h, uart_push, uart_out_room, uart_quit, d);
}

static void uart_hw(const struct device *dev, struct hw_desc *hw)
{
	const struct uart_dev *d = dev->priv;

	*hw = (struct hw_desc){.kind = HW_SERIAL,
			       .base = d->base,
			       .size = d->size,
			       .io_port = d->io_port,
			       .has_irq = true,
			       .level = true,
			       .irq = d->irq,
			       .clock = UART_CLOCK,
			       .console = d->console};
}

static void uart_unrealize(struct device *dev)
{
	struct uart_dev *d = dev->priv;

	if (d->attached)
		console_detach(&d->con);
	d->attached = false;
	uart_free(d->uart);
	d->uart = NULL;
	d->vm = NULL;
}

static int uart_dev_save(struct device *dev, struct snap_sec *sec)
{
	struct uart_dev *d = dev->priv;

	return uart_save(d->uart, sec);
}

static int uart_dev_restore(struct device *dev, const struct snap_sec *sec)
{
	struct uart_dev *d = dev->priv;

	return uart_restore(d->uart, sec);
}

static void uart_destroy(struct device *dev)
{
	struct uart_dev *d = dev->priv;

	if (d) {
		if (d->out_fd >= 0)
			close(d->out_fd);
		if (d->log_fd >= 0)
			close(d->log_fd);
		if (d->pty_fd >= 0)
			close(d->pty_fd);
		free(d->path);
		free(d->log);
	}
	device_free_priv(dev);
}

/* The host side: the guest sees none of it. */
static const char *const uart_restore_keys[] = {"host", "path", "log", "append", "sanitize", NULL};

const struct device_ops uart_ops = {
	.type = "ns16550a",
	.configure = uart_configure,
	.describe = uart_describe,
	.realize = uart_realize,
	.unrealize = uart_unrealize,
	.hw = uart_hw,
	.save = uart_dev_save,
	.restore = uart_dev_restore,
	.destroy = uart_destroy,
	.restore_keys = uart_restore_keys,
};
