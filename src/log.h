/* log: diagnostics for the monitor, and the invariant-check helper. */
#ifndef MICROVM_LOG_H
#define MICROVM_LOG_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Print "microvm: error: ..." to stderr. */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "microvm: warning: ..." to stderr. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "microvm: ..." to stderr when verbose logging is on. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "LOC: message" to stderr (a configuration error at LOC), or to the capture. */
void log_report(const char *loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vreport(const char *loc, const char *fmt, va_list ap);
/*
 * Send errors (log_error, log_report) to f instead of stderr, one a line, and drop warnings,
 * until called with NULL: the text an API request that failed answers with.
 */
void log_capture(FILE *f);
/* Turn verbose (log_info) messages on or off. */
void log_set_verbose(int on);
/* Return non-zero when verbose logging is on. */
int log_verbose(void);

/* A broken internal invariant: report the expression and abort. */
#define BUG_ON(cond)                                                                               \
	do {                                                                                       \
		if (cond) {                                                                        \
			fprintf(stderr, "microvm: BUG: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#endif
