/*
 * Unit tests: the 16550A register model (interrupts, FIFO, divisor latch, loopback), and its
 * state in a snapshot.
 */
#include <errno.h>
#include <stdio.h>

#include "devices/uart.h"
#include "log.h"
#include "snapshot/snapfile.h"
#include "test.h"

struct sink {
	int level, edges;
	char out[64];
	int nout;
	bool full; /* the host has no room for output */
};

static bool ready(void *opaque)
{
	const struct sink *s = opaque;

	return !s->full;
}

static void irq(void *opaque, int level)
{
	struct sink *s = opaque;

	s->level = level;
	s->edges++;
}

static void out(void *opaque, uint8_t byte)
{
	struct sink *s = opaque;

	if (s->nout < 63)
		s->out[s->nout++] = byte;
}

static uint8_t rd(struct uart *u, unsigned reg)
{
	uint8_t v = 0xee;

	uart_access(u, reg, &v, 1, false);
	return v;
}

static void wr(struct uart *u, unsigned reg, uint8_t v)
{
	uart_access(u, reg, &v, 1, true);
}

/* The registers and the bytes received go over; the line is raised as they say. */
static void round_trip(void)
{
	struct sink sa = {0}, sb = {0};
	struct uart *a = uart_new(irq, out, ready, &sa), *b = uart_new(irq, out, ready, &sb);
	struct snap *st = snap_new();
	struct snap_sec *sec = snap_add(st, "uart0");

	wr(a, 3, 0x80); /* DLAB: divisor 0x0c01 */
	wr(a, 0, 0x01);
	wr(a, 1, 0x0c);
	wr(a, 3, 0x1b);
	wr(a, 2, 0x01); /* FIFO on */
	wr(a, 7, 0x42);
	wr(a, 1, 0x05); /* RDI and RLSI */
	CHECK_EQ(uart_receive(a, (const uint8_t *)"hello", 5), 5);
	CHECK_EQ(rd(a, 0), 'h');
	CHECK_EQ(sa.level, 1);
	CHECK_EQ(uart_save(a, sec), 0);
	CHECK_EQ(uart_restore(b, sec), 0);
	CHECK_EQ(sb.level, 1); /* received data waits: the line is up */
	for (unsigned r = 1; r < 8; r++)
		CHECK_EQ(rd(b, r), rd(a, r));
	wr(b, 3, 0x9b);
	CHECK_EQ(rd(b, 0), 0x01);
	CHECK_EQ(rd(b, 1), 0x0c);
	wr(b, 3, 0x1b);
	for (const char *p = "ello"; *p; p++)
		CHECK_EQ(rd(b, 0), *p);
	CHECK_EQ(rd(b, 5) & 1, 0);
	CHECK_EQ(sb.level, 0);
	snap_free(st);
	uart_free(a);
	uart_free(b);
}

/* A state with one field wrong is refused, naming it; the UART stays as it was. */
static void refused(const char *field, uint64_t v, unsigned fifo)
{
	static const char *const regs[] = {"ier", "lcr", "mcr", "lsr", "scr", "dll", "dlm", "fcr"};
	struct sink s = {0};
	struct uart *u = uart_new(irq, out, ready, &s);
	struct snap *st = snap_new();
	struct snap_sec *sec = snap_add(st, "uart0");
	uint8_t bytes[65] = {0};
	char msg[256] = "", want[64];
	FILE *f = fmemopen(msg, sizeof(msg), "w");

	test_case("uart refused: %s", field);
	for (unsigned i = 0; i < 8; i++)
		snap_put_u64(sec, regs[i], !strcmp(regs[i], field) ? v : i == 3 ? 0x60 : 0);
	snap_put_u64(sec, "thri_pending", 0);
	snap_put_bytes(sec, "fifo", bytes, fifo);
	log_capture(f);
	CHECK_EQ(uart_restore(u, sec), -EINVAL);
	log_capture(NULL);
	if (f)
		fclose(f);
	snprintf(want, sizeof(want), "field '%s'", field);
	CHECK(strstr(msg, want) != NULL);
	CHECK_EQ(rd(u, 1), 0);
	CHECK_EQ(rd(u, 5), 0x60);
	CHECK_EQ(s.level, 0);
	snap_free(st);
	uart_free(u);
}

static void snapshots(void)
{
	test_case("uart round trip");
	round_trip();
	refused("ier", 0x10, 0); /* IER has four bits */
	refused("fcr", 0x02, 0); /* FCR keeps the enable and trigger bits */
	refused("lsr", 0x61, 0); /* data ready without data */
	refused("lsr", 0x20, 0); /* TEMT is never clear in the model */
	refused("fifo", 0, 65);	 /* longer than the FIFO */
}

void test_uart(void)
{
	struct sink s = {0};
	struct uart *u = uart_new(irq, out, ready, &s);
	uint8_t many[100];
	uint8_t wide[4] = {1, 2, 3, 4};

	CHECK(u != NULL);
	if (!u)
		return;
	CHECK_EQ(rd(u, 5) & 0x60, 0x60); /* LSR: THR empty, transmitter empty */
	CHECK_EQ(rd(u, 2) & 0x0f, 0x01); /* IIR: no interrupt */

	/* Transmit goes straight out. */
	wr(u, 0, 'h');
	wr(u, 0, 'i');
	CHECK_EQ(s.nout, 2);
	CHECK(s.out[0] == 'h' && s.out[1] == 'i');
	CHECK_EQ(s.level, 0); /* no interrupt without IER */

	/* Enabling THRI with an empty THR raises the line; reading IIR acknowledges it. */
	wr(u, 1, 0x02);
	CHECK_EQ(s.level, 1);
	CHECK_EQ(rd(u, 2) & 0x0f, 0x02);
	CHECK_EQ(s.level, 0);
	CHECK_EQ(rd(u, 2) & 0x0f, 0x01);
	wr(u, 0, '!'); /* sent at once, so THRE is pending again */
	CHECK_EQ(s.level, 1);
	wr(u, 1, 0x00);
	CHECK_EQ(s.level, 0);

	/* Receive: data-ready, RDI interrupt, FIFO order, line drops when drained. */
	wr(u, 1, 0x01);
	CHECK_EQ(uart_receive(u, (const uint8_t *)"ab", 2), 2);
	CHECK_EQ(s.level, 1);
	CHECK_EQ(rd(u, 5) & 0x01, 0x01);
	CHECK_EQ(rd(u, 2) & 0x0f, 0x04);
	CHECK_EQ(rd(u, 0), 'a');
	CHECK_EQ(s.level, 1);
	CHECK_EQ(rd(u, 0), 'b');
	CHECK_EQ(s.level, 0);
	CHECK_EQ(rd(u, 5) & 0x01, 0);

	/* A full FIFO takes only what fits; FCR clears it. */
	memset(many, 'x', sizeof(many));
	CHECK_EQ(uart_receive(u, many, sizeof(many)), 64);
	CHECK_EQ(uart_receive(u, many, 1), 0);
	wr(u, 2, 0x07);
	CHECK_EQ(rd(u, 5) & 0x01, 0);
	CHECK_EQ(s.level, 0);
	CHECK_EQ(rd(u, 2) & 0xc0, 0xc0); /* FIFOs enabled */

	/* Divisor latch hides RBR/IER behind DLL/DLM. */
	wr(u, 3, 0x83);
	wr(u, 0, 0x01);
	wr(u, 1, 0x00);
	CHECK_EQ(rd(u, 0), 0x01);
	wr(u, 3, 0x03);
	CHECK_EQ(rd(u, 1), 0x01); /* IER unchanged by the DLM write */
	CHECK_EQ(s.nout, 3);	  /* the DLL write did not transmit */

	/* Loopback: THR comes back on RBR, MSR mirrors MCR, nothing goes out. */
	wr(u, 4, 0x10 | 0x01 | 0x02);
	CHECK_EQ(rd(u, 6) & 0xf0, 0x30);
	wr(u, 0, 'L');
	CHECK_EQ(s.nout, 3);
	CHECK_EQ(rd(u, 0), 'L');
	wr(u, 4, 0x08);

	/*
	 * The host is short of room: THRE and TEMT stay clear, no THRE interrupt; a byte
	 * written anyway still goes to the host side (which has room for a burst). Room
	 * again raises the THRE interrupt.
	 */
	s.full = true;
	wr(u, 1, 0x02);
	CHECK_EQ(rd(u, 5) & 0x60, 0);
	CHECK_EQ(s.level, 0);
	wr(u, 0, 'x');
	CHECK_EQ(s.nout, 4);
	CHECK_EQ(s.level, 0);
	s.full = false;
	uart_tx_ready(u);
	CHECK_EQ(rd(u, 5) & 0x60, 0x60);
	CHECK_EQ(s.level, 1);
	CHECK_EQ(rd(u, 2) & 0x0f, 0x02);
	wr(u, 1, 0x00);

	/* Scratch register, and accesses wider than a byte are ignored. */
	wr(u, 7, 0x5a);
	CHECK_EQ(rd(u, 7), 0x5a);
	uart_access(u, 0, wide, 4, false);
	CHECK(wide[0] == 0 && wide[3] == 0);
	uart_free(u);
	snapshots();
}
