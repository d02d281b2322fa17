/* sandbox: per-thread seccomp allowlists, privilege drop and process hardening after set-up. */
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/kvm.h>
#include <linux/if_tun.h>
#include <linux/landlock.h>
#include <linux/vhost.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <pthread.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "log.h"
#include "term.h"

#define R_MAIN (1u << SANDBOX_MAIN)
#define R_VCPU (1u << SANDBOX_VCPU)
#define R_BLK  (1u << SANDBOX_BLK_WORKER)
#define R_CONS (1u << SANDBOX_CONSOLE_OUT)
#define R_ALL  (R_MAIN | R_VCPU | R_BLK | R_CONS)
#define R_API  (1u << SANDBOX_NROLES) /* the main thread's, with --api-sock */
#define R_SNAP (2u << SANDBOX_NROLES) /* the main thread's, when it writes snapshots */

/* With a vsock device: the main thread's (the event loop's) additions. */
#define R_VSOCK (4u << SANDBOX_NROLES)
/* With a device that arms a timer where its queue is served: the main and vCPU threads'. */
#define R_TIMER (8u << SANDBOX_NROLES)
/* The main and vCPU threads' (a register write serves or reconfigures queues too), with a
 * NIC (its TAP), a NIC with vhost = on, a disk with the io_uring engine. */
#define R_TAP	(16u << SANDBOX_NROLES)
#define R_VHOST (32u << SANDBOX_NROLES)
#define R_URING (64u << SANDBOX_NROLES)

/* System calls a role may make with any arguments. */
static const struct {
	const char *name;
	unsigned roles;
} plain[] = {
	/* threads, memory (malloc), time, signals, logging: every role */
	{"futex", R_ALL},
	{"exit", R_ALL},
	{"exit_group", R_ALL},
	{"rt_sigreturn", R_ALL},
	{"rt_sigprocmask", R_ALL},
	{"restart_syscall", R_ALL},
	{"madvise", R_ALL},
	{"munmap", R_ALL},
	{"mremap", R_ALL},
	{"brk", R_ALL},
	{"clock_gettime", R_ALL},
	{"clock_nanosleep", R_ALL},
	{"nanosleep", R_ALL},
	{"gettid", R_ALL},
	{"getpid", R_ALL},
	{"sched_yield", R_ALL},
	{"getrandom", R_ALL},
	{"sigaltstack", R_ALL}, /* the sanitizers' thread and exit hooks */
	{"write", R_ALL},	/* eventfds, the console, log messages */
	{"poll", R_CONS},	/* the console writer: a host output that is full, waited on */
	{"ppoll", R_CONS},
	/* the event loop: epoll, eventfds, signalfd, TAP frames, io_uring, teardown */
	{"read", R_MAIN | R_VCPU},
	{"readv", R_MAIN | R_VCPU}, /* a vCPU serves a queue too (a trapped notify, DRIVER_OK) */
	{"writev", R_MAIN | R_VCPU},
	{"epoll_pwait", R_MAIN},
	{"epoll_wait", R_MAIN},
	{"epoll_ctl", R_MAIN | R_VCPU}, /* loop_mod() from a register write */
	{"io_uring_enter", R_URING},
	{"close", R_MAIN},
	/* No stat of any kind: seccomp cannot tell newfstatat on a descriptor (glibc's fstat)
	 * from one on a path. A stdio stream used after set-up gets its buffer before
	 * (sandbox_stream), so that its first read or write does not stat it to size one. */
	{"lseek", R_MAIN},
	/* a sync-engine disk */
	{"preadv", R_BLK},
	{"pwritev", R_BLK},
	{"preadv2", R_BLK},
	{"pwritev2", R_BLK},
	{"fdatasync", R_BLK},
	{"fallocate", R_BLK},
	/* the control API's socket (api/http.c): connections, their peer, their deadlines */
	{"accept4", R_API | R_VSOCK},
	{"getsockopt", R_API},
	{"timerfd_settime", R_API | R_VSOCK | R_TIMER}, /* and virtio-rng's rate limit */
	/* vsock: host programs connect to uds_path (accept4 above, its handshake deadlines), the
	 * guest's connections reach "<uds_path>_<port>" (socket, narrowed below, and connect:
	 * the thread can make no socket but a Unix stream one), a guest's shutdown is passed
	 * on */
	{"connect", R_VSOCK},
	{"shutdown", R_VSOCK},
	/* snapshot files (snapshot/), created only in the snapshot directory (below) */
	/* A snapshot's files are looked at before they are replaced (never a socket or a
	 * directory): only for machines that write snapshots, with Landlock keeping every
	 * write beneath the snapshot directory. */
	{"newfstatat", R_SNAP},
	{"fstat", R_SNAP},
	{"ftruncate", R_SNAP},
	{"pwrite64", R_SNAP},
	{"fsync", R_SNAP | R_BLK},
	{"sysinfo", R_SNAP}, /* glibc's qsort sizes its buffer by physical memory */
};

/* ioctl request numbers, per role; the fd cannot be told apart, the request can. */
static const struct {
	unsigned long req;
	unsigned roles;
} ioctls[] = {
	{KVM_RUN, R_VCPU},
#ifdef __aarch64__
	/* An external data abort for an access KVM cannot decode. (x86 sets vCPU events only
	 * to restore a snapshot: on the main thread, before lock-down.) */
	{KVM_SET_VCPU_EVENTS, R_VCPU},
#endif
	{KVM_IRQ_LINE, R_MAIN | R_VCPU | R_CONS}, /* the UART's, when output room returns */
	{KVM_IRQFD, R_MAIN | R_VCPU},
	{KVM_IOEVENTFD, R_MAIN | R_VCPU},
	{KVM_SET_GSI_ROUTING, R_MAIN | R_VCPU},
	{KVM_SIGNAL_MSI, R_MAIN | R_VCPU},
	{TUNSETOFFLOAD, R_TAP},
	{TUNSETQUEUE, R_TAP},
	{TUNGETIFF, R_TAP}, /* is the TAP still there (a vhost ring error: the TAP or the guest)? */
	/* vhost = on: rings handed to the kernel and taken back (DRIVER_OK, reset, masks) */
	{VHOST_SET_FEATURES, R_VHOST},
	{VHOST_SET_VRING_NUM, R_VHOST},
	{VHOST_SET_VRING_BASE, R_VHOST},
	{VHOST_GET_VRING_BASE, R_VHOST},
	{VHOST_SET_VRING_ADDR, R_VHOST},
	{VHOST_SET_VRING_KICK, R_VHOST},
	{VHOST_SET_VRING_CALL, R_VHOST},
	{VHOST_SET_VRING_ERR, R_VHOST},
	{VHOST_NET_SET_BACKEND, R_VHOST},
	/* a snapshot of the paused VM: the vCPUs' registers, the interrupt controller's state
	 * (and on GICv3 its order to write its tables into guest RAM) */
	{KVM_GET_REG_LIST, R_SNAP},
	{KVM_GET_ONE_REG, R_SNAP},
	{KVM_GET_MP_STATE, R_SNAP},
	{KVM_GET_DEVICE_ATTR, R_SNAP},
	{KVM_SET_DEVICE_ATTR, R_SNAP},
	{KVM_CHECK_EXTENSION, R_SNAP}, /* what the host can do, recorded with the state */
#ifdef __x86_64__
	{KVM_GET_REGS, R_SNAP},
	{KVM_GET_SREGS, R_SNAP},
	{KVM_GET_XSAVE, R_SNAP},
	{KVM_GET_XSAVE2, R_SNAP},
	{KVM_GET_XCRS, R_SNAP},
	{KVM_GET_CPUID2, R_SNAP},
	{KVM_GET_MSRS, R_SNAP},
	{KVM_GET_LAPIC, R_SNAP},
	{KVM_GET_VCPU_EVENTS, R_SNAP},
	{KVM_GET_DEBUGREGS, R_SNAP},
	{KVM_GET_TSC_KHZ, R_SNAP},
	{KVM_GET_IRQCHIP, R_SNAP},
	{KVM_GET_PIT2, R_SNAP},
	{KVM_GET_CLOCK, R_SNAP},
#endif
	{TCGETS, R_ALL}, /* the terminal is restored on any fatal exit */
	{TCSETS, R_ALL},
	{TCSETSW, R_ALL},
	{TCSETSF, R_ALL},
};

static const char *const role_names[SANDBOX_NROLES] = {
	[SANDBOX_MAIN] = "main",
	[SANDBOX_VCPU] = "vcpu",
	[SANDBOX_BLK_WORKER] = "blk-worker",
	[SANDBOX_CONSOLE_OUT] = "console-writer",
};

/*
 * OPEN: nothing to wait for (no sandbox asked for); HELD: until lock-down; RUN: go on (with
 * the role's filter unless seccomp = off); CANCELLED: set-up or lock-down failed, do nothing.
 */
enum gate { GATE_OPEN, GATE_HELD, GATE_RUN, GATE_CANCELLED };

static struct sandbox_config cfg;
static struct sock_fprog progs[SANDBOX_NROLES];
static unsigned counts[SANDBOX_NROLES];
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static enum gate gate = GATE_OPEN;
static unsigned entered, settled; /* threads at the gate, and those past it with a filter */
static bool prepared;
static __thread int my_role = -1;

/* Names of system calls by number, resolved before any filter is in force. */
#define NAMES_MAX 512
static _Atomic(char *) names[NAMES_MAX]; /* filled after lock-down, read by the handler */
static atomic_bool names_ready;

const char *sandbox_role_name(enum sandbox_role role)
{
	return role < SANDBOX_NROLES ? role_names[role] : "?";
}

unsigned sandbox_allowed(enum sandbox_role role)
{
	return prepared && cfg.mode != SANDBOX_OFF && role < SANDBOX_NROLES ? counts[role] : 0;
}

static bool denied(const char *name)
{
	size_t n = strlen(name);

	for (const char *p = cfg.deny; p && *p;) {
		size_t len = strcspn(p, ",");

		if (len == n && !strncmp(p, name, n))
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

/* Argument n compared with op (MASKED_EQ: (arg & a) == b; others: arg op a). */
static struct scmp_arg_cmp cmp_arg(unsigned n, enum scmp_compare op, uint64_t a, uint64_t b)
{
	return (struct scmp_arg_cmp){.arg = n, .op = op, .datum_a = a, .datum_b = b};
}

/* Add name for this role with up to one argument comparison; returns 1 if added. */
static int allow(scmp_filter_ctx ctx, const char *name, unsigned nargs, struct scmp_arg_cmp cmp)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR || nr < 0 || denied(name))
		return 0; /* not a system call on this architecture, or taken out */
	if (nargs ? seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, cmp)
		  : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0))
		return -1;
	return 1;
}

/*
 * vsock: socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) and nothing else: no
 * other domain (no network), no other type.
 */
static int allow_unix_socket(scmp_filter_ctx ctx, unsigned *count)
{
	int nr = seccomp_syscall_resolve_name("socket");

	if (nr == __NR_SCMP_ERROR || nr < 0 || denied("socket"))
		return 0;
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 3, cmp_arg(0, SCMP_CMP_EQ, AF_UNIX, 0),
			     cmp_arg(1, SCMP_CMP_EQ, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
			     cmp_arg(2, SCMP_CMP_EQ, 0, 0)))
		return -EINVAL;
	(*count)++;
	return 0;
}

/*
 * Snapshots: files are created, renamed and removed only relative to the snapshot
 * directory's descriptor (the names the API gives are plain file names, checked before;
 * seccomp cannot read a path, so "../" or an absolute path is the caller's to refuse), and
 * opened only to create a new one (O_CREAT | O_EXCL, written) or to sync the directory: no
 * existing file can be opened, truncated or written through this rule.
 */
#define KERNEL_O_LARGEFILE 0100000 /* what a 64-bit libc may add to open's flags */
static int allow_snapshot_dir(scmp_filter_ctx ctx, unsigned *count)
{
	uint64_t fd = (uint64_t)cfg.snapshot_dirfd;
	uint64_t mask = 0xffffffffu & ~(uint64_t)(O_CLOEXEC | KERNEL_O_LARGEFILE);
	const uint64_t opens[] = {O_WRONLY | O_CREAT | O_EXCL, O_RDONLY | O_DIRECTORY};
	const char *const two[] = {"renameat", "renameat2"};
	int nr = seccomp_syscall_resolve_name("openat"), r;

	for (size_t i = 0; nr >= 0 && !denied("openat") && i < ARRAY_SIZE(opens); i++) {
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 2, cmp_arg(0, SCMP_CMP_EQ, fd, 0),
				     cmp_arg(2, SCMP_CMP_MASKED_EQ, mask, opens[i])))
			return -EINVAL;
		(*count)++;
	}
	r = allow(ctx, "unlinkat", 1, cmp_arg(0, SCMP_CMP_EQ, fd, 0));
	if (r < 0)
		return -EINVAL;
	*count += r > 0;
	for (size_t i = 0; i < ARRAY_SIZE(two); i++) {
		nr = seccomp_syscall_resolve_name(two[i]);
		if (nr == __NR_SCMP_ERROR || nr < 0 || denied(two[i]))
			continue;
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 2, cmp_arg(0, SCMP_CMP_EQ, fd, 0),
				     cmp_arg(2, SCMP_CMP_EQ, fd, 0)))
			return -EINVAL;
		(*count)++;
	}
	return 0;
}

/* The BPF program libseccomp generates for ctx, copied out through a memfd. */
static int export_bpf(scmp_filter_ctx ctx, struct sock_fprog *prog)
{
	int fd = memfd_create("microvm-seccomp", MFD_CLOEXEC), err;
	struct stat st;
	void *buf = NULL;

	if (fd < 0)
		return -errno;
	err = seccomp_export_bpf(ctx, fd);
	if (!err && fstat(fd, &st) < 0)
		err = -errno;
	if (!err && (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter)))
		err = -EINVAL;
	if (!err && !(buf = malloc(st.st_size)))
		err = -ENOMEM;
	if (!err && pread(fd, buf, st.st_size, 0) != st.st_size)
		err = -EIO;
	close(fd);
	if (err) {
		free(buf);
		return err;
	}
	prog->filter = buf;
	prog->len = st.st_size / sizeof(struct sock_filter);
	return 0;
}

static int build(enum sandbox_role role)
{
	unsigned bit = 1u << role;
	uint32_t deflt = cfg.mode == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
	scmp_filter_ctx ctx = seccomp_init(deflt);
	int err = 0, r;
	bool any_ioctl = false;

	if (!ctx)
		return -ENOMEM;
	counts[role] = 0;
	/* An inline-engine disk does the blk worker's file I/O where its queue is served. */
	bool file_io = cfg.inline_io && (role == SANDBOX_MAIN || role == SANDBOX_VCPU);

	if (cfg.api && role == SANDBOX_MAIN)
		bit |= R_API;
	if (cfg.snapshots && role == SANDBOX_MAIN)
		bit |= R_SNAP;
	if (cfg.vsock && role == SANDBOX_MAIN)
		bit |= R_VSOCK;
	if (role == SANDBOX_MAIN || role == SANDBOX_VCPU)
		bit |= (cfg.timers ? R_TIMER : 0) | (cfg.tap ? R_TAP : 0) |
		       (cfg.vhost ? R_VHOST : 0) | (cfg.io_uring ? R_URING : 0);
	for (size_t i = 0; !err && i < ARRAY_SIZE(plain); i++) {
		if (!(plain[i].roles & bit) && !(file_io && (plain[i].roles & R_BLK)))
			continue;
		r = allow(ctx, plain[i].name, 0, cmp_arg(0, SCMP_CMP_EQ, 0, 0));
		err = r < 0 ? -EINVAL : 0;
		counts[role] += r > 0;
	}
	/* No executable memory: guest data never becomes code. Signals only to this process
	 * (abort(), vCPU kicks). */
	const struct {
		const char *name;
		struct scmp_arg_cmp cmp;
	} narrowed[] = {
		{"mmap", cmp_arg(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)},
		{"mprotect", cmp_arg(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)},
		{"tgkill", cmp_arg(0, SCMP_CMP_EQ, (uint64_t)getpid(), 0)},
	};
	for (size_t i = 0; !err && i < ARRAY_SIZE(narrowed); i++) {
		r = allow(ctx, narrowed[i].name, 1, narrowed[i].cmp);
		err = r < 0 ? -EINVAL : 0;
		counts[role] += r > 0;
	}
	if (!err && (bit & R_SNAP))
		err = allow_snapshot_dir(ctx, &counts[role]);
	if (!err && (bit & R_VSOCK))
		err = allow_unix_socket(ctx, &counts[role]);
	for (size_t i = 0; !err && i < ARRAY_SIZE(ioctls); i++) {
		if (!(ioctls[i].roles & bit))
			continue;
		r = allow(ctx, "ioctl", 1,
			  cmp_arg(1, SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i].req));
		err = r < 0 ? -EINVAL : 0;
		any_ioctl |= r > 0;
	}
	counts[role] += any_ioctl;
	free(progs[role].filter); /* an earlier attempt's (an API start that failed) */
	progs[role] = (struct sock_fprog){0};
	err = err ?: export_bpf(ctx, &progs[role]);
	seccomp_release(ctx);
	return err;
}

int sandbox_unknown_syscall(const char *list, char *name, size_t size)
{
	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, ",");

		snprintf(name, size, "%.*s", (int)len, p);
		if (len >= size || seccomp_syscall_resolve_name(name) < 0)
			return 1;
		p += len + (p[len] == ',');
	}
	return 0;
}

/*
 * /etc/passwd read with fgetpwent(): the static build has no NSS modules to load. Returns
 * true when found by name (name != NULL) or by uid.
 */
static bool passwd_find(const char *name, uid_t uid, uid_t *out_uid, gid_t *out_gid)
{
	FILE *f = fopen("/etc/passwd", "re");
	struct passwd *pw;
	bool found = false;

	if (!f)
		return false;
	while (!found && (pw = fgetpwent(f))) {
		if (name ? !strcmp(pw->pw_name, name) : pw->pw_uid == uid) {
			*out_uid = pw->pw_uid;
			*out_gid = pw->pw_gid;
			found = true;
		}
	}
	fclose(f);
	return found;
}

int sandbox_lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
	char *end;
	unsigned long n;

	if (passwd_find(name, 0, uid, gid))
		return 0;
	/* A number: that uid, and its group if it has one (else the same number). */
	errno = 0;
	n = strtoul(name, &end, 10);
	if (!*name || *end || errno || n >= (uid_t)-1)
		return -ENOENT;
	if (!passwd_find(NULL, (uid_t)n, uid, gid)) {
		*uid = (uid_t)n;
		*gid = (gid_t)n;
	}
	return 0;
}

int sandbox_prepare(const struct sandbox_config *c)
{
	int err = 0;

	cfg = *c;
	prepared = true;
	/*
	 * One malloc arena: a new arena makes glibc read /sys/devices/system/cpu/online and a
	 * shrinking one /proc/sys/vm/overcommit_memory, opens no thread may make later.
	 */
	mallopt(M_ARENA_MAX, 1);
	pthread_mutex_lock(&gate_lock);
	gate = GATE_HELD;      /* threads wait for the drop and their filters */
	entered = settled = 0; /* an earlier attempt's threads (an API start that failed) ended */
	pthread_mutex_unlock(&gate_lock);
	if (cfg.mode == SANDBOX_OFF)
		return 0;
	for (int r = 0; !err && r < SANDBOX_NROLES; r++)
		err = build(r);
	if (err) {
		log_error("seccomp: cannot build the filters: %s", strerror(-err));
		sandbox_cancel();
		return err;
	}
	return 0;
}

static size_t append(char *buf, size_t len, size_t size, const char *s)
{
	while (*s && len < size)
		buf[len++] = *s++;
	return len;
}

/*
 * A system call outside the allowlist: name it (one write, so that two threads trapping at
 * once do not mix their lines), restore the terminal, stop the process.
 */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char msg[256], num[24], *p = num + sizeof(num), *name;
	int nr = si->si_syscall;
	unsigned v = nr < 0 ? 0 : (unsigned)nr;
	size_t n = 0;
	ssize_t w;

	(void)sig;
	(void)uc;
	*--p = 0;
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	n = append(msg, n, sizeof(msg), "\r\nmicrovm: seccomp: the ");
	n = append(msg, n, sizeof(msg), my_role >= 0 ? role_names[my_role] : "unknown");
	n = append(msg, n, sizeof(msg), " thread made a system call outside its allowlist: ");
	/* Another thread trapping just after lock-down: the main thread is naming the calls. */
	for (int i = 0; i < 100 && my_role != SANDBOX_MAIN && !atomic_load(&names_ready); i++)
		nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
	name = nr >= 0 && nr < NAMES_MAX ? atomic_load_explicit(&names[nr], memory_order_relaxed)
					 : NULL;
	n = append(msg, n, sizeof(msg), name ? name : "?");
	n = append(msg, n, sizeof(msg), " (");
	n = append(msg, n, sizeof(msg), p);
	n = append(msg, n, sizeof(msg),
		   "); stopping (machine.seccomp = log reports without stopping)\r\n");
	w = write(STDERR_FILENO, msg, n);
	(void)w;
	term_restore();
	_exit(1);
}

static int install(enum sandbox_role role)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &progs[role]) < 0)
		return -errno;
	return 0;
}

/* No capabilities left in any set, none to regain (bounding set), none ambient. */
static int drop_capabilities(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {{0}};

	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL && errno != EPERM)
			return -errno;
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	if (d[0].effective | d[0].permitted | d[0].inheritable | d[1].effective | d[1].permitted |
	    d[1].inheritable) {
		log_error("sandbox: capabilities remain after dropping them all");
		return -EPERM;
	}
	return 0;
}

bool sandbox_thread_enter(enum sandbox_role role)
{
	bool counted;
	enum gate g;
	int err;

	pthread_mutex_lock(&gate_lock);
	counted = gate == GATE_HELD;
	entered += counted;
	while (gate == GATE_HELD)
		pthread_cond_wait(&gate_cond, &gate_lock);
	g = gate;
	pthread_mutex_unlock(&gate_lock);
	my_role = role;
	if (g == GATE_CANCELLED)
		return false;
	if (g == GATE_OPEN)
		return true;
	/* Capabilities are per thread: each drops its own (ids changed in all of them). */
	err = drop_capabilities();
	err = err ?: cfg.mode == SANDBOX_OFF ? 0 : install(role);
	if (err) {
		/* Never run unconfined when confinement was asked for. */
		log_error("sandbox: %s thread: cannot drop its capabilities or install its filter: "
			  "%s",
			  role_names[role], strerror(-err));
		term_restore();
		_exit(1);
	}
	pthread_mutex_lock(&gate_lock);
	settled += counted;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	return true;
}

/* Lock-down: wait until every thread that reached the gate has its filter (later ones
 * install theirs on arrival, before any work). */
static void wait_settled(void)
{
	pthread_mutex_lock(&gate_lock);
	while (settled < entered)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
}

static void open_gate(enum gate to)
{
	pthread_mutex_lock(&gate_lock);
	if (gate == GATE_HELD)
		gate = to;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

bool sandbox_confined(void)
{
	bool on;

	pthread_mutex_lock(&gate_lock);
	on = gate == GATE_RUN && cfg.mode != SANDBOX_OFF;
	pthread_mutex_unlock(&gate_lock);
	return on;
}

void sandbox_cancel(void)
{
	open_gate(GATE_CANCELLED);
}

/* Descriptors open at start but 0, 1 and 2, and which file each was (to close that alone). */
static struct inherited {
	int fd;
	dev_t dev;
	ino_t ino;
} * inherited;
static size_t ninherited;

void sandbox_note_inherited(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		int fd = atoi(e->d_name);
		struct inherited *more;
		struct stat st;

		if (fd <= STDERR_FILENO || fd == dirfd(d) || fstat(fd, &st) < 0)
			continue;
		more = realloc(inherited, (ninherited + 1) * sizeof(*inherited));
		if (!more)
			break;
		inherited = more;
		inherited[ninherited++] = (struct inherited){fd, st.st_dev, st.st_ino};
	}
	if (d)
		closedir(d);
}

/* Close the inherited descriptors that still are what they were at start. */
static void close_inherited(void)
{
	unsigned closed = 0;

	for (size_t i = 0; i < ninherited; i++) {
		struct stat st;

		if (fstat(inherited[i].fd, &st) == 0 && st.st_dev == inherited[i].dev &&
		    st.st_ino == inherited[i].ino)
			closed += close(inherited[i].fd) == 0;
	}
	if (closed)
		log_info("sandbox: %u inherited descriptor%s closed", closed,
			 closed > 1 ? "s" : "");
	free(inherited);
	inherited = NULL;
	ninherited = 0;
}

int sandbox_stream(FILE *f, char *buf, size_t size)
{
	return setvbuf(f, buf, _IOFBF, size) ? -EINVAL : 0;
}

/* The highest number in a /proc directory of numbers (open fds, threads) and how many. */
static int scan_proc(const char *dir, int *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int max = 0;

	*count = 0;
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		++*count;
		if (atoi(e->d_name) > max)
			max = atoi(e->d_name);
	}
	closedir(d);
	return max;
}

static int limit(int res, rlim_t n, const char *what)
{
	struct rlimit rl = {n, n};

	if (setrlimit(res, &rl) < 0) {
		int err = -errno;

		log_error("sandbox: cannot lower %s to %llu: %s", what, (unsigned long long)n,
			  strerror(errno));
		return err;
	}
	return 0;
}

static int drop_privileges(void)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (setgroups(0, NULL) < 0 && getgroups(0, NULL) != 0 &&
	    !(getuid() == cfg.uid && geteuid() == cfg.uid)) {
		log_error("user: cannot drop supplementary groups: %s", strerror(errno));
		return -EPERM;
	}
	if (setresgid(cfg.gid, cfg.gid, cfg.gid) < 0 || setresuid(cfg.uid, cfg.uid, cfg.uid) < 0) {
		int err = -errno;

		log_error("user: cannot change to uid %u gid %u: %s", (unsigned)cfg.uid,
			  (unsigned)cfg.gid, strerror(errno));
		return err;
	}
	/* Verify: every id is the new one and root cannot be regained. */
	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0 || r != cfg.uid ||
	    e != cfg.uid || s != cfg.uid || rg != cfg.gid || eg != cfg.gid || sg != cfg.gid) {
		log_error("user: privileges were not dropped to uid %u gid %u", (unsigned)cfg.uid,
			  (unsigned)cfg.gid);
		return -EPERM;
	}
	if ((cfg.uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) ||
	    (cfg.gid != 0 && (setgid(0) == 0 || setegid(0) == 0))) {
		/* It got root back: stop here, as root, before anything else runs. */
		log_error("user: root could be regained after dropping to uid %u",
			  (unsigned)cfg.uid);
		term_restore();
		_exit(1);
	}
	return 0;
}

/*
 * Landlock (Linux 5.13+): the main thread may create, write, truncate, remove or rename files
 * only beneath the snapshot directory. Seccomp narrows openat to that directory's
 * descriptor, but an absolute path ignores the descriptor; Landlock checks the path itself.
 * Reading is not restricted here (the filters decide). 1 applied, 0 not available, -errno.
 */
static int landlock_snapshot_dir(void)
{
	const uint64_t writes = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
				LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
				LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
				LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
				LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
	/* ABI 2 and 3 (older headers lack their names) */
	const uint64_t refer = 1ull << 13, truncate = 1ull << 14;
	struct landlock_ruleset_attr attr = {.handled_access_fs = writes};
	struct landlock_path_beneath_attr dir = {.allowed_access = LANDLOCK_ACCESS_FS_WRITE_FILE |
								   LANDLOCK_ACCESS_FS_REMOVE_FILE |
								   LANDLOCK_ACCESS_FS_MAKE_REG,
						 .parent_fd = cfg.snapshot_dirfd};
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	int fd, err = 0;

	if (abi < 1)
		return 0; /* ENOSYS, EOPNOTSUPP: a kernel without it, or with it off */
	if (abi >= 2)
		attr.handled_access_fs |= refer;
	if (abi >= 3) {
		attr.handled_access_fs |= truncate;
		dir.allowed_access |= truncate;
	}
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH, &dir, 0) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_landlock_restrict_self, fd, 0) < 0)
		err = -errno;
	close(fd);
	return err ?: 1;
}

int sandbox_lock_down(void)
{
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	int nfds, fd, err;

	close_inherited();
	fd = scan_proc("/proc/self/fd", &nfds);
	/*
	 * Set-up is over: nothing more is opened (a few descriptors of slack). RLIMIT_NPROC is
	 * left alone: it counts every task of the user, io_uring's on-demand kernel workers
	 * included (a lowered one fails their I/O with ECANCELED), and no thread may fork or
	 * clone past its filter anyway.
	 */
	err = fd < 0 ? fd
		     : limit(RLIMIT_NOFILE, (rlim_t)fd + 1 + 16 + cfg.spare_fds, "RLIMIT_NOFILE");
	err = err ?: cfg.drop ? drop_privileges() : 0;
	err = err ?: drop_capabilities();
	/* Changing credentials cleared the parent-death signal: set it again, then check. */
	if (!err && cfg.parent &&
	    (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != cfg.parent))
		err = -ESRCH;
	if (!err && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		err = -errno;
	if (err) {
		sandbox_cancel();
		return err;
	}
	if (cfg.mode == SANDBOX_OFF) {
		open_gate(GATE_RUN);
		wait_settled();
		return 0;
	}
	/* (the main thread's alone, before any held thread goes on: a failure cancels all) */
	if (cfg.snapshots && cfg.mode == SANDBOX_ON) {
		err = landlock_snapshot_dir();
		if (err < 0) {
			log_error("landlock: main thread: %s", strerror(-err));
			sandbox_cancel();
			return err;
		}
		log_info("landlock: %s", err ? "files written only beneath the snapshot directory"
					     : "not available in this kernel (seccomp only)");
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSYS, &sa, NULL);
	open_gate(GATE_RUN);
	wait_settled();
	my_role = SANDBOX_MAIN;
	err = install(SANDBOX_MAIN);
	if (err) {
		log_error("seccomp: main thread: cannot install its filter: %s", strerror(-err));
		return err;
	}
	/*
	 * The names the SIGSYS handler prints, resolved now that the guest may run (not on the
	 * way to its first KVM_RUN): a thread that traps meanwhile waits for them.
	 */
	for (int nr = 0; nr < NAMES_MAX; nr++)
		atomic_store_explicit(&names[nr],
				      seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr),
				      memory_order_relaxed);
	atomic_store(&names_ready, true);
	log_info("seccomp %s: system calls allowed: main %u, vcpu %u, blk-worker %u, "
		 "console-writer %u",
		 cfg.mode == SANDBOX_LOG ? "log" : "on", counts[SANDBOX_MAIN], counts[SANDBOX_VCPU],
		 counts[SANDBOX_BLK_WORKER], counts[SANDBOX_CONSOLE_OUT]);
	return 0;
}
