/* log: diagnostics for the monitor. */
#include "log.h"

#include <stdarg.h>
#include <string.h>

static int verbose;
static FILE *capture;

/*
 * One line: "HEAD message" on stderr or, while a request captures them (log_capture),
 * "CAP message" to it (nothing when cap is NULL): stderr is not for a client to fill.
 */
static void emit(const char *head, const char *cap, const char *fmt, va_list ap)
{
	FILE *f = capture ? capture : stderr;

	if (capture && !cap)
		return;
	fputs(capture ? cap : head, f);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
}

/* Errors go to the request that asked when one is capturing; warnings and notes do not. */
static void vlog(const char *prefix, const char *fmt, va_list ap)
{
	char head[32];

	snprintf(head, sizeof(head), "microvm: %s", prefix);
	emit(head, !strcmp(prefix, "error: ") ? "" : NULL, fmt, ap);
}

void log_vreport(const char *loc, const char *fmt, va_list ap)
{
	char head[512];

	snprintf(head, sizeof(head), "%s: ", loc);
	emit(head, head, fmt, ap);
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
