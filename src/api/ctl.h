/* ctl: microvm ctl, the command-line client of a VM's API socket, and where sockets live. */
#ifndef MICROVM_API_CTL_H
#define MICROVM_API_CTL_H

#include <stdbool.h>
#include <stddef.h>

/* A VM name usable as a socket file name: 1-64 of [A-Za-z0-9._-], not starting with '.'. */
bool api_valid_name(const char *name);
/*
 * The socket of the VM called name: $XDG_RUNTIME_DIR/microvm/NAME.sock, else
 * /run/microvm/NAME.sock for root, /tmp/microvm-UID/NAME.sock for others. create: make the
 * directory. -errno (said).
 */
int api_sock_path(const char *name, char *buf, size_t size, bool create);
/* microvm ctl ARGS (argv[0] is "ctl"): the process's exit status. */
int ctl_main(int argc, char **argv);

#endif
