/* term: the host terminal's mode, saved and put back on every way out (exit, fatal signal). */
#include "term.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include "array.h"

static struct termios saved_termios;
static volatile int termios_saved;

void term_restore(void)
{
	if (termios_saved) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
		termios_saved = 0;
	}
}

/* A crash must not leave the user's terminal in raw mode: restore it, then die as before. */
static void fatal_signal(int sig)
{
	term_restore();
	raise(sig); /* SA_RESETHAND: the default action now */
}

/*
 * Every signal whose default action ends the process, except those microvm handles itself:
 * INT, TERM and HUP (a signalfd), USR1 (vCPU kicks), PIPE (ignored). KILL and STOP cannot
 * be caught: after kill -9 the terminal needs `reset`.
 */
static void catch_fatal_signals(void)
{
	static const int fatal[] = {SIGSEGV, SIGBUS,  SIGFPE,  SIGILL,	  SIGABRT, SIGQUIT,
				    SIGTRAP, SIGSYS,  SIGXCPU, SIGXFSZ,	  SIGALRM, SIGVTALRM,
				    SIGPROF, SIGUSR2, SIGPWR,  SIGSTKFLT, SIGPOLL};
	struct sigaction sa = {.sa_handler = fatal_signal, .sa_flags = SA_RESETHAND};

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(fatal); i++)
		sigaction(fatal[i], &sa, NULL);
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		sigaction(sig, &sa, NULL);
}

int term_raw(void)
{
	struct termios t;

	if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
		return -errno;
	t = saved_termios;
	cfmakeraw(&t);
	t.c_oflag |= OPOST | ONLCR; /* keep host-side newline handling for our own messages */
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0)
		return -errno;
	termios_saved = 1;
	atexit(term_restore);
	catch_fatal_signals();
	return 0;
}
