/* Unit tests: the console's control-sequence filter (sanitize = on). */
#include <stdint.h>

#include "sanitize.h"
#include "test.h"

#define check_clean(in, want) check_clean_n(in, sizeof(in) - 1, want)

static void check_clean_n(const char *in, size_t len, const char *want)
{
	struct sanitize s = {0};
	uint8_t out[256];
	size_t n = sanitize(&s, (const uint8_t *)in, len, out);

	out[n] = 0;
	CHECK_STR((char *)out, want);
	if (strcmp((char *)out, want))
		printf("    '%s' -> '%s'\n", in, (char *)out);
}

void test_sanitize(void)
{
	struct sanitize s = {0};
	uint8_t out[16];

	check_clean("plain text\r\n\tok\b", "plain text\r\n\tok\b");
	check_clean("a\x1b[31mred\x1b[0m b", "ared b"); /* CSI (colours) */
	check_clean("\x1b]0;owned title\x07x", "x");	/* OSC ended by BEL */
	check_clean("\x1b]52;c;Y2xpcA==\x1b\\y", "y");	/* OSC 52 clipboard, ST */
	check_clean("\x1bP+q544e\x1b\\z", "z");		/* DCS */
	check_clean("\x1b"
		    "c\x1b(Bq",
		    "q");			       /* reset; charset select */
	check_clean("bell\x07\x00\x7f\x0e!", "bell!"); /* C0 controls, DEL */
	check_clean("\xc2\x9b"
		    "31m\xc2\x9d"
		    "0;t\x07u",
		    "u"); /* UTF-8 encoded C1 CSI, OSC */
	check_clean("caf\xc3\xa9 \xc2\xa0\xe2\x82\xac", "caf\xc3\xa9 \xc2\xa0\xe2\x82\xac");
	/* A lone 0xc2 cannot pair with a byte after dropped ones into a C1 control. */
	check_clean("a\xc2\x00\x00\x9b"
		    "1m",
		    "a1m");
	check_clean("\xf0\x9f\x98\x80 \xe2\x82\xac", "\xf0\x9f\x98\x80 \xe2\x82\xac");
	check_clean("\xc0\x9b"
		    "1m\xe0\x80\x9b"
		    "2m\xed\xa0\x80\xf4\x90\x80\x80!",
		    "1m2m!");
	check_clean("\x9b"
		    "31mraw C1 and stray continuation",
		    "31mraw C1 and stray continuation");
	/* A sequence split across writes, one byte at a time (the UART's way). */
	{
		const char *in = "x\x1b[1;3";
		size_t n = 0;

		for (size_t i = 0; in[i]; i++)
			n += sanitize(&s, (const uint8_t *)in + i, 1, out + n);
		n += sanitize(&s, (const uint8_t *)"1mz", 3, out + n);
		out[n] = 0;
		CHECK_STR((char *)out, "xz");
		/* A character cut between writes comes out whole, with the second. */
		n = sanitize(&s, (const uint8_t *)"\xc2", 1, out);
		CHECK_EQ(n, 0);
		n = sanitize(&s, (const uint8_t *)"\xa9", 1, out);
		CHECK(n == 2 && out[0] == 0xc2 && out[1] == 0xa9);
	}
}
