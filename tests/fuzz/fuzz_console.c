/*
 * libFuzzer target: the console's control-sequence filter (sanitize = on) over guest output
 * the fuzzer controls. The first byte picks how the output is cut into writes (the UART
 * writes one byte at a time, the filter must not care). Checked: no write grows by more
 * than a held character, the result does not depend on the cuts, it is well-formed UTF-8,
 * and nothing a terminal acts on survives: no ESC or other C0 control but tab, newline,
 * return and backspace, no DEL, no C1 control (U+0080..U+009F).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sanitize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t run(const uint8_t *in, size_t n, size_t cut, uint8_t *out)
{
	struct sanitize s = {0};
	size_t o = 0;

	for (size_t i = 0; i < n; i += cut) {
		size_t len = n - i < cut ? n - i : cut, got = sanitize(&s, in + i, len, out + o);

		if (got > len + SANITIZE_SLACK)
			abort();
		o += got;
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *whole, *cut;
	size_t n1, n2;

	if (!size)
		return 0;
	whole = malloc(size + SANITIZE_SLACK);
	cut = malloc(size + SANITIZE_SLACK);
	n1 = run(data + 1, size - 1, size, whole);
	n2 = run(data + 1, size - 1, 1 + data[0] % 7, cut);
	if (n1 != n2 || memcmp(whole, cut, n1))
		abort();
	for (size_t i = 0; i < n1;) {
		uint8_t c = whole[i];
		size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		uint32_t cp = c < 0x80 ? c : c >= 0xf0 ? c & 7u : c >= 0xe0 ? c & 15u : c & 31u;

		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\b') || c == 0x7f ||
		    (c >= 0x80 && c < 0xc2) || c > 0xf4 || i + len > n1)
			abort();
		for (size_t k = 1; k < len; k++) {
			if ((whole[i + k] & 0xc0) != 0x80)
				abort();
			cp = cp << 6 | (whole[i + k] & 0x3fu);
		}
		/* No C1, overlong form, surrogate or code point past U+10FFFF. */
		if ((cp >= 0x80 && cp <= 0x9f) || (len == 3 && cp < 0x800) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
			abort();
		i += len;
	}
	free(whole);
	free(cut);
	return 0;
}
