/* kick: the signal that interrupts a thread's blocking call (KVM_RUN, the console's write()). */
#ifndef MICROVM_KICK_H
#define MICROVM_KICK_H

#include <signal.h>
#include <stddef.h>

#define KICK_SIGNAL SIGUSR1

static inline void kick_handler(int sig)
{
	(void)sig;
}

/*
 * Give KICK_SIGNAL a handler that does nothing, without SA_RESTART: a blocking call in the
 * thread it is sent to returns EINTR. Threads that take kicks unblock it themselves.
 */
static inline void kick_signal_install(void)
{
	struct sigaction sa = {.sa_handler = kick_handler};

	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIGNAL, &sa, NULL);
}

#endif
