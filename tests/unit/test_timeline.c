/* Unit tests: the boot timeline, the boot-timer register and the --boot-report JSON. */
#include <stdlib.h>
#include <time.h>

#include "devices/boottimer.h"
#include "le.h"
#include "test.h"
#include "timeline.h"

static char *report(const struct boot_report *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	CHECK(timeline_write_json(f, r) == 0);
	fclose(f);
	return buf;
}

/* Braces and brackets balance outside strings, and the text ends with "}\n". */
static int balanced(const char *s)
{
	int depth = 0, in_str = 0;

	for (; *s; s++) {
		if (in_str) {
			if (*s == '\\' && s[1])
				s++;
			else if (*s == '"')
				in_str = 0;
			continue;
		}
		if (*s == '"')
			in_str = 1;
		else if (*s == '{' || *s == '[')
			depth++;
		else if ((*s == '}' || *s == ']') && --depth < 0)
			return 0;
	}
	return depth == 0 && !in_str;
}

void test_timeline(void)
{
	struct boot_report r = {"rpi5", 2, 256, 0, 1000, 900, 70000, 65536};
	struct timespec ms = {0, 2000000};
	uint8_t b[4] = {BOOT_TIMER_MAGIC};
	uint32_t t0, t1;
	double first, elapsed_ms;
	uint64_t before;
	char *j;

	timeline_reset();
	CHECK(timeline_at(TL_VM_BUILT) < 0);
	timeline_mark(TL_VM_BUILT);
	first = timeline_at(TL_VM_BUILT);
	CHECK(first >= 0);
	nanosleep(&ms, NULL);
	timeline_mark(TL_VM_BUILT); /* the first mark wins */
	CHECK(timeline_at(TL_VM_BUILT) == first);
	timeline_mark(TL_FIRST_KVM_RUN);
	CHECK(timeline_at(TL_FIRST_KVM_RUN) >= first + 0.002);
	timeline_add_exit_time(1500000);
	timeline_add_exit_time(500000);
	CHECK(timeline_exit_time() > 0.00199 && timeline_exit_time() < 0.00201);
	CHECK_STR(timeline_name(TL_INIT_REACHED), "init_reached");

	/* The boot timer: only the magic byte at offset 0 marks init, once. */
	b[0] = 7;
	boot_timer_access(NULL, 0, b, 1, true);
	CHECK(timeline_at(TL_INIT_REACHED) < 0);
	b[0] = BOOT_TIMER_MAGIC;
	boot_timer_access(NULL, 4, b, 1, true);
	CHECK(timeline_at(TL_INIT_REACHED) < 0);
	boot_timer_access(NULL, 0, b, 1, true);
	first = timeline_at(TL_INIT_REACHED);
	CHECK(first > 0);
	nanosleep(&ms, NULL);
	boot_timer_access(NULL, 0, b, 1, true);
	CHECK(timeline_at(TL_INIT_REACHED) == first);
	/*
	 * Reads: milliseconds since start, little-endian, zeros past the counter. They advance
	 * by at least the sleep and by no more than the time measured around both reads (a
	 * busy machine may stretch the sleep; whole milliseconds: one more).
	 */
	before = timeline_clock_ns();
	boot_timer_access(NULL, 0, b, 4, false);
	t0 = le32_get(b);
	nanosleep(&ms, NULL);
	boot_timer_access(NULL, 0, b, 4, false);
	t1 = le32_get(b);
	elapsed_ms = (timeline_clock_ns() - before) / 1e6;
	CHECK(t1 >= t0 + 2 && t1 <= t0 + elapsed_ms + 1);
	boot_timer_access(NULL, 8, b, 4, false);
	CHECK(b[0] == 0 && b[3] == 0);

	/* The report: every phase present, unreached ones null, the monitor's share derived. */
	j = report(&r);
	CHECK(j && balanced(j));
	CHECK(j && strstr(j, "\"format\": \"microvm-boot-report/1\""));
	CHECK(j && strstr(j, "\"machine\": \"rpi5\""));
	CHECK(j && strstr(j, "\"vcpus\": 2,") && strstr(j, "\"memory_mib\": 256,"));
	CHECK(j && strstr(j, "\"process_start\": 0.000"));
	for (int e = 0; e < TL_COUNT; e++) {
		char key[64];

		snprintf(key, sizeof(key), "\"%s\": ", timeline_name(e));
		CHECK(j && strstr(j, key));
	}
	CHECK(j && strstr(j, "\"exit\": null") && strstr(j, "\"config_parsed\": null"));
	CHECK(j && !strstr(j, "\"first_kvm_run\": null"));
	CHECK(j && strstr(j, "\"exits\": 1000,") && strstr(j, "\"mmio_exits\": 900,"));
	CHECK(j && strstr(j, "\"exit_handling_ms\": 2.000"));
	CHECK(j && strstr(j, "\"monitor_rss_kib\": 4464"));
	if (j) {
		double run = atof(strstr(j, "\"first_kvm_run\": ") + 17);
		double mon = atof(strstr(j, "\"monitor_ms\": ") + 14);

		CHECK(mon > run + 1.999 && mon < run + 2.001);
	}
	free(j);
	/* Unknown memory is null; a machine name is escaped into a valid string. */
	r.machine = "a\"b\\c\n";
	r.rss_kib = -1;
	j = report(&r);
	CHECK(j && balanced(j) && strstr(j, "\"machine\": \"a\\\"b\\\\c\\u000a\""));
	CHECK(j && strstr(j, "\"rss_kib\": null") && strstr(j, "\"monitor_rss_kib\": null"));
	free(j);
	timeline_reset();
	CHECK(timeline_at(TL_FIRST_KVM_RUN) < 0 && timeline_exit_time() == 0);
}
