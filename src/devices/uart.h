/* uart: a 16550A-compatible serial port with an interrupt, usable as the guest console. */
#ifndef MICROVM_UART_H
#define MICROVM_UART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device.h"

extern const struct device_ops uart_ops;

struct snap_sec;
struct uart;

/*
 * Register-level model, exposed for unit tests: create a UART whose interrupt is reported to
 * irq(opaque, level) and whose output goes to out(opaque, byte) while ready(opaque) says the
 * host has room (NULL: always). Until then THRE stays clear, as on a slow line.
 */
struct uart *uart_new(void (*irq)(void *opaque, int level), void (*out)(void *opaque, uint8_t byte),
		      bool (*ready)(void *opaque), void *opaque);
/* The host has room for output again: THRE, and its interrupt if enabled (any thread). */
void uart_tx_ready(struct uart *u);
/* Guest access to register offset (0-7) of the UART. */
void uart_access(struct uart *u, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* Host input: queue up to n bytes into the receive FIFO; returns how many fitted. */
size_t uart_receive(struct uart *u, const uint8_t *buf, size_t n);
/*
 * Snapshot: the registers ("ier", "lcr", "mcr", "lsr", "scr", "dll", "dlm", "fcr"), whether
 * a THR-empty interrupt is pending ("thri_pending") and the received bytes ("fifo"). -errno.
 */
int uart_save(struct uart *u, struct snap_sec *sec);
/*
 * Restore them, each checked as the guest's writes are (bits it cannot set refused), and
 * drive the interrupt line as they say. 0, or -EINVAL (said) with nothing changed.
 */
int uart_restore(struct uart *u, const struct snap_sec *sec);
/* Free a UART made by uart_new. */
void uart_free(struct uart *u);

#endif
