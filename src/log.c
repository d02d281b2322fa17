/* log: diagnostics for the monitor. */
#include "log.h"

#include <stdarg.h>
#include <string.h>

static int verbose;
static FILE *capture;

static void vlog(const char *prefix, const char *fmt, va_list ap)
{
	va_list again;

	if (capture && !strcmp(prefix, "error: ")) { /* errors only */
		va_copy(again, ap);
		vfprintf(capture, fmt, again);
		fputc('\n', capture);
		va_end(again);
	}
	fprintf(stderr, "microvm: %s", prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void log_vreport(const char *loc, const char *fmt, va_list ap)
{
	va_list again;

	if (capture) {
		va_copy(again, ap);
		fprintf(capture, "%s: ", loc);
		vfprintf(capture, fmt, again);
		fputc('\n', capture);
		va_end(again);
	}
	fprintf(stderr, "%s: ", loc);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void log_report(const char *loc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vreport(loc, fmt, ap);
	va_end(ap);
}

void log_capture(FILE *f)
{
	capture = f;
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("error: ", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("warning: ", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void log_set_verbose(int on)
{
	verbose = on;
}

int log_verbose(void)
{
	return verbose;
}
