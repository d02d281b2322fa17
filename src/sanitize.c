/* sanitize: strips terminal control sequences from untrusted output, byte by byte. */
#include "sanitize.h"

#include <stdbool.h>

enum {
	TEXT,	    /* ordinary output */
	ESC,	    /* after ESC */
	ESC_INTER,  /* ESC, intermediate bytes (0x20-0x2f): up to the final byte */
	CSI,	    /* ESC [ or C1 CSI: parameters up to a final byte 0x40-0x7e */
	STRING,	    /* OSC, DCS, SOS, PM, APC: up to BEL or ST */
	STRING_ESC, /* ESC inside a string: '\' ends it (ST) */
};

/* What a C1 control (U+0080..U+009F) starts: CSI, a string command, or nothing more. */
static uint8_t c1_state(uint32_t cp)
{
	if (cp == 0x9b)
		return CSI;
	if (cp == 0x90 || cp == 0x98 || cp == 0x9d || cp == 0x9e || cp == 0x9f)
		return STRING;
	return TEXT;
}

static bool shown(uint8_t c)
{
	return (c >= 0x20 && c < 0x7f) || c == '\t' || c == '\n' || c == '\r' || c == '\b';
}

/* A UTF-8 lead byte: how many continuation bytes follow and the first one's range (RFC 3629:
 * no overlong forms, no surrogates, nothing past U+10FFFF). False if c cannot start one. */
static bool utf8_lead(struct sanitize *s, uint8_t c)
{
	s->lo = 0x80;
	s->hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		s->need = 1;
	else if (c >= 0xe0 && c <= 0xef)
		s->need = 2;
	else if (c >= 0xf0 && c <= 0xf4)
		s->need = 3;
	else
		return false;
	if (c == 0xe0)
		s->lo = 0xa0;
	else if (c == 0xed)
		s->hi = 0x9f;
	else if (c == 0xf0)
		s->lo = 0x90;
	else if (c == 0xf4)
		s->hi = 0x8f;
	s->seq[0] = c;
	s->have = 1;
	return true;
}

/* The character in s->seq is complete: text, or a C1 control that may start a sequence. */
static size_t utf8_done(struct sanitize *s, uint8_t *out)
{
	uint32_t cp = s->have == 2 ? ((s->seq[0] & 0x1fu) << 6) | (s->seq[1] & 0x3fu) : 0x100;

	if (cp >= 0x80 && cp <= 0x9f) {
		s->state = c1_state(cp);
		return 0;
	}
	for (uint8_t i = 0; i < s->have; i++)
		out[i] = s->seq[i];
	return s->have;
}

size_t sanitize(struct sanitize *s, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = in[i];

		switch (s->state) {
		case TEXT:
			if (s->need) {
				if (c < s->lo || c > s->hi) {
					/* Malformed: the held bytes go, this one starts afresh. */
					s->need = 0;
					i--; /* read again (unsigned: wraps back to 0) */
					break;
				}
				s->seq[s->have++] = c;
				s->lo = 0x80;
				s->hi = 0xbf;
				if (!--s->need)
					o += utf8_done(s, out + o);
			} else if (c == 0x1b) {
				s->state = ESC;
			} else if (shown(c)) {
				out[o++] = c;
			} else if (c >= 0x80) {
				utf8_lead(s,
					  c); /* a stray continuation byte or non-UTF-8: dropped */
			}
			break;
		case ESC:
			if (c == '[')
				s->state = CSI;
			else if (c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_')
				s->state = STRING;
			else if (c >= 0x20 && c <= 0x2f)
				s->state = ESC_INTER;
			else if (c != 0x1b)
				s->state = TEXT; /* a two-character escape: both dropped */
			break;
		case ESC_INTER:
			if (c < 0x20 || c > 0x2f)
				s->state = c == 0x1b ? ESC : TEXT;
			break;
		case CSI:
			if (c >= 0x40 && c <= 0x7e)
				s->state = TEXT;
			else if (c == 0x1b)
				s->state = ESC;
			break;
		case STRING:
			if (c == 0x07)
				s->state = TEXT;
			else if (c == 0x1b)
				s->state = STRING_ESC;
			break;
		case STRING_ESC:
			s->state = c == '\\' ? TEXT : c == 0x1b ? STRING_ESC : STRING;
			break;
		default:
			s->state = TEXT;
		}
	}
	return o;
}
