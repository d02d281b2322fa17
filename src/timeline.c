/* timeline: when each start-up phase happened, and the boot report (--boot-report) as JSON. */
#include "timeline.h"

#include <errno.h>
#include <stdatomic.h>
#include <time.h>

static uint64_t t_start;		/* timeline_clock_ns() at process start */
static _Atomic int64_t marks[TL_COUNT]; /* ns since start + 1; 0 = not reached */
static atomic_ullong exit_ns;

static const char *const names[TL_COUNT] = {
	[TL_CONFIG_PARSED] = "config_parsed",
	[TL_BOOT_FILES_READ] = "boot_files_read",
	[TL_VM_BUILT] = "vm_built",
	[TL_IMAGES_LOADED] = "images_loaded",
	[TL_FIRST_KVM_RUN] = "first_kvm_run",
	[TL_FIRST_CONSOLE_OUTPUT] = "first_console_output",
	[TL_INIT_REACHED] = "init_reached",
	[TL_EXIT] = "exit",
	[TL_SANDBOXED] = "sandboxed",
	[TL_STATE_READ] = "state_read",
	[TL_STATE_RESTORED] = "state_restored",
};

uint64_t timeline_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((constructor)) static void timeline_start(void)
{
	t_start = timeline_clock_ns();
}

/* Nanoseconds since process start. */
static int64_t since_start_ns(void)
{
	return (int64_t)(timeline_clock_ns() - t_start);
}

double timeline_now(void)
{
	return since_start_ns() / 1e9;
}

void timeline_mark(enum tl_event e)
{
	int64_t unset = 0;

	if (e < TL_COUNT && !atomic_load_explicit(&marks[e], memory_order_relaxed))
		atomic_compare_exchange_strong(&marks[e], &unset, since_start_ns() + 1);
}

double timeline_at(enum tl_event e)
{
	int64_t v = e < TL_COUNT ? atomic_load(&marks[e]) : 0;

	return v ? (v - 1) / 1e9 : -1;
}

void timeline_add_exit_time(uint64_t ns)
{
	atomic_fetch_add_explicit(&exit_ns, ns, memory_order_relaxed);
}

double timeline_exit_time(void)
{
	return atomic_load(&exit_ns) / 1e9;
}

const char *timeline_name(enum tl_event e)
{
	return e < TL_COUNT ? names[e] : "?";
}

void timeline_reset(void)
{
	t_start = timeline_clock_ns();
	for (int i = 0; i < TL_COUNT; i++)
		atomic_store(&marks[i], 0);
	atomic_store(&exit_ns, 0);
}

/* A JSON string: the machine name comes from the INI file and may hold anything. */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_kib(FILE *f, long long kib)
{
	if (kib < 0)
		fputs("null", f);
	else
		fprintf(f, "%lld", kib);
}

static void json_ms(FILE *f, double secs)
{
	if (secs < 0)
		fputs("null", f);
	else
		fprintf(f, "%.3f", secs * 1e3);
}

int timeline_write_json(FILE *f, const struct boot_report *r)
{
	double first = timeline_at(TL_FIRST_KVM_RUN);

	fputs("{\n  \"format\": \"microvm-boot-report/1\",\n  \"machine\": ", f);
	json_string(f, r->machine);
	fprintf(f, ",\n  \"vcpus\": %u,\n  \"memory_mib\": %llu,\n  \"exit_status\": %d,\n",
		r->vcpus, (unsigned long long)r->memory_mib, r->exit_status);
	fputs("  \"timeline_ms\": {\n    \"process_start\": 0.000", f);
	for (int i = 0; i < TL_COUNT; i++) {
		fprintf(f, ",\n    \"%s\": ", names[i]);
		json_ms(f, timeline_at(i));
	}
	fprintf(f, "\n  },\n  \"exits\": %lu,\n  \"mmio_exits\": %lu,\n  \"exit_handling_ms\": ",
		r->exits, r->mmio_exits);
	json_ms(f, timeline_exit_time());
	/* The monitor's own share: set-up before the guest ran, then every exit it handled. */
	fputs(",\n  \"monitor_ms\": ", f);
	json_ms(f, first < 0 ? -1 : first + timeline_exit_time());
	fputs(",\n  \"rss_kib\": ", f);
	json_kib(f, r->rss_kib);
	fputs(",\n  \"guest_ram_rss_kib\": ", f);
	json_kib(f, r->guest_rss_kib);
	fputs(",\n  \"monitor_rss_kib\": ", f);
	json_kib(f, r->rss_kib < 0 || r->guest_rss_kib < 0 ? -1 : r->rss_kib - r->guest_rss_kib);
	fputs("\n}\n", f);
	return ferror(f) ? -EIO : 0;
}
