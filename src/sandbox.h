/* sandbox: per-thread seccomp allowlists, privilege drop and process hardening after set-up. */
#ifndef MICROVM_SANDBOX_H
#define MICROVM_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* What a thread does decides which system calls it may make. */
enum sandbox_role {
	SANDBOX_MAIN,	     /* the event loop, then teardown */
	SANDBOX_VCPU,	     /* KVM_RUN and the MMIO exits it handles */
	SANDBOX_BLK_WORKER,  /* a sync-engine disk's I/O thread */
	SANDBOX_CONSOLE_OUT, /* the console writer */
	SANDBOX_NROLES,
};

enum sandbox_mode { SANDBOX_ON, SANDBOX_OFF, SANDBOX_LOG };

struct sandbox_config {
	int mode;	    /* enum sandbox_mode */
	bool drop;	    /* change to uid/gid at lock-down */
	uid_t uid;	    /* the [machine] user's */
	gid_t gid;	    /* its primary group */
	const char *deny;   /* comma-separated system calls taken out of every allowlist (tests) */
	pid_t parent;	    /* a supervising parent this process must die with, 0 if none */
	bool vsock;	    /* a vsock device: the event loop accepts and connects Unix sockets */
	bool timers;	    /* a device arms a timerfd where its queue is served (loop or vCPU) */
	bool tap;	    /* a NIC: its TAP queues' offloads and attachment change at run time */
	bool vhost;	    /* a NIC with vhost = on: its rings go to the kernel and come back */
	bool io_uring;	    /* a disk with the io_uring engine: its requests are submitted */
	bool inline_io;	    /* a disk's engine is inline: main and vCPU threads do file I/O */
	bool api;	    /* --api-sock: the main thread accepts and serves its connections */
	unsigned spare_fds; /* descriptors opened after set-up (the API's connections) */
	bool snapshots;	    /* the main thread writes snapshots into snapshot_dirfd */
	int snapshot_dirfd; /* the snapshot directory: the only one files are created in */
};

/*
 * Start of main, before anything is opened: remember the descriptors inherited from the
 * launching process (all but 0, 1 and 2). Lock-down closes those still open: microvm
 * opens what it uses itself (a /dev/fd/N path named in the machine is a new descriptor).
 */
void sandbox_note_inherited(void);
/*
 * A stdio stream opened in set-up and read or written after lock-down: give it buf (size
 * bytes, to outlive the stream) as its buffer now. Its first read or write would otherwise
 * fstat() its descriptor to size one, and no thread may stat after lock-down. -errno.
 */
int sandbox_stream(FILE *f, char *buf, size_t size);
/*
 * Build every role's filter (nothing is installed yet) and hold back threads that call
 * sandbox_thread_enter() until sandbox_lock_down() or sandbox_cancel(). -errno.
 */
int sandbox_prepare(const struct sandbox_config *c);
/*
 * Main thread, once set-up is done and every thread exists: close the inherited descriptors
 * (sandbox_note_inherited), lower RLIMIT_NOFILE, drop to the user (verified) and every capability,
 * make the process undumpable, let the other threads install their filters, then install the main
 * thread's. -errno; on failure the held threads are told to do nothing (sandbox_thread_enter()
 * returns false).
 */
int sandbox_lock_down(void);
/* Are the filters in force (lock-down done, seccomp not off)? Then no file is opened or removed. */
bool sandbox_confined(void);
/* Set-up failed: release held threads, telling them to do nothing. Idempotent. */
void sandbox_cancel(void);
/*
 * Thread start: wait for lock-down, then install this role's filter (none when seccomp is
 * off or no sandbox was prepared). False: set-up failed, the thread must end without work.
 */
bool sandbox_thread_enter(enum sandbox_role role);
/* The number of system calls role may make (0 before sandbox_prepare or when off). */
unsigned sandbox_allowed(enum sandbox_role role);
/* The role's name, for messages ("vcpu", "main", ...). */
const char *sandbox_role_name(enum sandbox_role role);
/* The first name in a comma-separated list that is not a system call here (copied), or 0. */
int sandbox_unknown_syscall(const char *list, char *name, size_t size);
/* Resolve a user name or numeric uid into uid and primary gid. -ENOENT if unknown. */
int sandbox_lookup_user(const char *name, uid_t *uid, gid_t *gid);

#endif
