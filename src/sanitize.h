/* sanitize: strips terminal control sequences from untrusted output, byte by byte. */
#ifndef MICROVM_SANITIZE_H
#define MICROVM_SANITIZE_H

#include <stddef.h>
#include <stdint.h>

/* Where the stream is in a control sequence or a UTF-8 character; zero-initialise. */
struct sanitize {
	uint8_t state;
	uint8_t have, need; /* UTF-8: bytes held, continuation bytes still to come */
	uint8_t lo, hi;	    /* the range the next continuation byte must be in */
	uint8_t seq[4];	    /* the character so far */
};

/* Most bytes sanitize() adds to a call's output beyond its input (a held character). */
#define SANITIZE_SLACK 3

/*
 * Copy what a UTF-8 terminal shows as text from in[0..n) to out (room for n +
 * SANITIZE_SLACK): printable ASCII, tab, newline, carriage return, backspace and well-formed
 * UTF-8 characters from U+00A0 on. Dropped, also across calls: escape sequences (CSI, OSC,
 * DCS and the other string commands, two-character escapes), other C0 controls, DEL, C1
 * controls (U+0080..U+009F, which start the same sequences), malformed and overlong UTF-8.
 * Returns the count.
 */
size_t sanitize(struct sanitize *s, const uint8_t *in, size_t n, uint8_t *out);

#endif
