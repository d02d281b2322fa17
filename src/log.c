/* log: diagnostics for the monitor. */
#include "log.h"

#include <stdarg.h>
#include <string.h>

static int verbose;
static FILE *capture;

static void vlog(const char *prefix, const char *fmt, va_list ap)
{

	if (capture) {
		/* Errors go to the request that asked; warnings nowhere (not to a client's
		 * stderr flood). */
		if (!strcmp(prefix, "error: ")) {
			vfprintf(capture, fmt, ap);
			fputc('\n', capture);
		}
		return;
	}
	fprintf(stderr, "microvm: %s", prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void log_vreport(const char *loc, const char *fmt, va_list ap)
{

	if (capture) {
		/* The request that asked gets it; stderr is not for a client to fill. */
		fprintf(capture, "%s: ", loc);
		vfprintf(capture, fmt, ap);
		fputc('\n', capture);
		return;
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
