/*
 * The TAP ioctls seen by virtio-net in tests: the unit tests and the fuzzer back a NIC with
 * socket pairs, which have no TAP offloads or queues. They link with
 * -Wl,--wrap=tap_set_offload,--wrap=tap_set_queue_enabled, so these take the calls.
 */
#include <stdbool.h>

int __wrap_tap_set_offload(int fd, unsigned flags);
int __wrap_tap_set_queue_enabled(int fd, bool enabled);

unsigned tapwrap_offload_calls, tapwrap_queue_calls;

int __wrap_tap_set_offload(int fd, unsigned flags)
{
	(void)fd;
	(void)flags;
	tapwrap_offload_calls++;
	return 0;
}

int __wrap_tap_set_queue_enabled(int fd, bool enabled)
{
	(void)fd;
	(void)enabled;
	tapwrap_queue_calls++;
	return 0;
}
