/* term: the host terminal's mode, saved and put back on every way out (exit, fatal signal). */
#ifndef MICROVM_TERM_H
#define MICROVM_TERM_H

/*
 * Put the terminal on standard input in raw mode (keeping output newline handling), after
 * saving its mode for term_restore(), at exit and on any fatal signal. -errno.
 */
int term_raw(void);
/* Restore the mode saved by term_raw (idempotent, async-signal-safe). */
void term_restore(void);

#endif
