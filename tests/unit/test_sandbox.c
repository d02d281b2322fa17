/*
 * Unit tests: the sandbox in forked children (the test process itself stays unconfined):
 * each thread role's filter kills a system call outside its list with a message naming it,
 * log mode lets it through, arguments are narrowed, every thread is filtered, and a dropped
 * user cannot become root again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/vhost.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"
#include "test.h"

/* Run fn in a child with stderr captured; returns its exit status (128 + signal if killed). */
static int in_child(int (*fn)(void *), void *arg, char *err, size_t size)
{
	int p[2], ws;
	size_t len = 0;
	ssize_t r;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		_exit(fn(arg)); /* no atexit handlers, no leak check: they are not the test */
	}
	close(p[1]);
	while (len + 1 < size && (r = read(p[0], err + len, size - 1 - len)) > 0)
		len += (size_t)r;
	err[len] = 0;
	close(p[0]);
	if (pid < 0 || waitpid(pid, &ws, 0) < 0)
		return -1;
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

/* System calls no role may make, and ones outside a role's arguments. */
static void call_socket(void)
{
	syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
}

static void call_openat(void)
{
	syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY);
}

static void call_ioctl_fionread(void)
{
	int n;

	syscall(SYS_ioctl, 0, FIONREAD, &n);
}

static void call_mmap_exec(void)
{
	syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void call_fdatasync(void)
{
	syscall(SYS_fdatasync, 1);
}

static void call_setuid0(void)
{
	syscall(SYS_setuid, 0);
}

/* What the console writer does when the host's output is full (libc's poll: poll or ppoll). */
static void call_poll(void)
{
	struct pollfd p = {.fd = STDERR_FILENO, .events = POLLOUT};

	poll(&p, 1, 0);
}

struct role_case {
	enum sandbox_role role;
	int mode;
	const char *deny;
	void (*call)(void);
	const char *expect; /* in the message, e.g. "the vcpu thread ...: socket (" */
	bool allowed_first; /* make an allowed call (write) first: it must work */
};

/* The devices of role_child's machine: what its filters allow besides each role's own. */
static struct sandbox_config with;

static void *role_thread(void *arg)
{
	struct role_case *rc = arg;

	sandbox_thread_enter(rc->role);
	if (rc->allowed_first && write(STDERR_FILENO, "allowed\n", 8) != 8)
		_exit(5);
	rc->call();
	return NULL;
}

static int role_child(void *arg)
{
	struct role_case *rc = arg;
	struct sandbox_config c = with;
	pthread_t t;

	c.mode = rc->mode;
	c.deny = rc->deny;
	if (sandbox_prepare(&c))
		return 7;
	if (rc->role != SANDBOX_MAIN && pthread_create(&t, NULL, role_thread, rc))
		return 8;
	if (sandbox_lock_down())
		return 9;
	if (rc->role == SANDBOX_MAIN) {
		if (rc->allowed_first && write(STDERR_FILENO, "allowed\n", 8) != 8)
			return 5;
		rc->call();
	} else {
		pthread_join(t, NULL);
	}
	return 0;
}

static void check_kill(struct role_case rc)
{
	char err[1024], want[160];
	int st = in_child(role_child, &rc, err, sizeof(err));

	snprintf(want, sizeof(want),
		 "microvm: seccomp: the %s thread made a system call outside "
		 "its allowlist: %s",
		 sandbox_role_name(rc.role), rc.expect);
	CHECK_EQ(st, 1);
	CHECK(strstr(err, want) != NULL);
	if (!strstr(err, want))
		printf("    wanted '%s', got: %s\n", want, err);
	if (rc.allowed_first)
		CHECK(strstr(err, "allowed\n") != NULL);
}

static void call_socket_inet(void)
{
	syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

static void call_socket_dgram(void)
{
	syscall(SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

static void call_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	syscall(SYS_connect, 0, &sa, sizeof(sa));
}

/*
 * With a vsock device the event loop's thread accepts, makes Unix stream sockets, connects
 * and shuts them down (arg: a listening socket's path). Exit 0 when all of it worked.
 */
static int vsock_child(void *arg)
{
	struct sandbox_config c = {.mode = SANDBOX_ON, .vsock = true};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), fd, afd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", (const char *)arg);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0)
		return 8;
	if (sandbox_prepare(&c) || sandbox_lock_down())
		return 9;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return 3;
	afd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (afd < 0 || shutdown(fd, SHUT_WR) < 0)
		return 4;
	close(afd);
	close(fd);
	return 0;
}

static void test_vsock_calls(void)
{
	char dir[] = "/tmp/mv-sbvsock-XXXXXX", path[64], err[512];
	int st;

	/* What the bridge needs works; no other socket can be made. */
	if (!mkdtemp(dir)) {
		CHECK(0);
		return;
	}
	snprintf(path, sizeof(path), "%s/s", dir);
	st = in_child(vsock_child, path, err, sizeof(err));
	CHECK_EQ(st, 0);
	if (st)
		printf("    child exit %d: %s\n", st, err);
	unlink(path);
	rmdir(dir);
	with.vsock = true;
	check_kill((struct role_case){SANDBOX_MAIN, SANDBOX_ON, NULL, call_socket_inet, "socket (",
				      1});
	check_kill((struct role_case){SANDBOX_MAIN, SANDBOX_ON, NULL, call_socket_dgram, "socket (",
				      1});
	/* A vCPU never makes one; without a vsock device the event loop does not either. */
	check_kill(
		(struct role_case){SANDBOX_VCPU, SANDBOX_ON, NULL, call_connect, "connect (", 1});
	with.vsock = false;
	check_kill(
		(struct role_case){SANDBOX_MAIN, SANDBOX_ON, NULL, call_connect, "connect (", 1});
}

/* timerfd_settime on a descriptor that is none: EBADF when allowed (else the filter kills). */
static void call_timer(void)
{
	struct itimerspec its = {0};

	if (syscall(SYS_timerfd_settime, -1, 0, &its, NULL) == 0 || errno != EBADF)
		_exit(6);
}

/*
 * A device that arms a timer where its queue is served (virtio-rng's rate limit): the event
 * loop's and the vCPUs' threads may set a timer; without one neither may, and no other role.
 */
static void test_timer_calls(void)
{
	struct role_case rc = {SANDBOX_VCPU, SANDBOX_ON, NULL, call_timer, "", 1};
	char err[512];
	int st;

	with.timers = true;
	st = in_child(role_child, &rc, err, sizeof(err));
	CHECK_EQ(st, 0);
	rc.role = SANDBOX_MAIN;
	CHECK_EQ(in_child(role_child, &rc, err, sizeof(err)), 0);
	check_kill((struct role_case){SANDBOX_BLK_WORKER, SANDBOX_ON, NULL, call_timer,
				      "timerfd_settime (", 1});
	with.timers = false;
	check_kill((struct role_case){SANDBOX_VCPU, SANDBOX_ON, NULL, call_timer,
				      "timerfd_settime (", 1});
	check_kill((struct role_case){SANDBOX_MAIN, SANDBOX_ON, NULL, call_timer,
				      "timerfd_settime (", 1});
}

static void test_roles(void)
{
	char err[512];

	/* Each role: one call outside its list kills the process and names the call. */
	check_kill((struct role_case){SANDBOX_VCPU, SANDBOX_ON, NULL, call_socket, "socket (", 1});
	check_kill((struct role_case){SANDBOX_BLK_WORKER, SANDBOX_ON, NULL, call_openat, "openat (",
				      1});
	check_kill((struct role_case){SANDBOX_CONSOLE_OUT, SANDBOX_ON, NULL, call_ioctl_fionread,
				      "ioctl (", 1});
	check_kill((struct role_case){SANDBOX_MAIN, SANDBOX_ON, NULL, call_mmap_exec, "mmap (", 1});
	check_kill((struct role_case){SANDBOX_MAIN, SANDBOX_ON, NULL, call_setuid0, "setuid (", 0});
	/* The console writer waits for a full output to take more; a vCPU never does. */
	CHECK_EQ(in_child(role_child,
			  &(struct role_case){SANDBOX_CONSOLE_OUT, SANDBOX_ON, NULL, call_poll, "",
					      1},
			  err, sizeof(err)),
		 0);
	check_kill((struct role_case){SANDBOX_VCPU, SANDBOX_ON, NULL, call_poll, "poll (", 1});
	/* A call in the list, taken out with seccomp_deny. */
	check_kill((struct role_case){SANDBOX_BLK_WORKER, SANDBOX_ON, "fsync,fdatasync",
				      call_fdatasync, "fdatasync (", 0});
}

static int log_child(void *arg)
{
	struct sandbox_config c = {.mode = SANDBOX_LOG};
	int fd;

	(void)arg;
	if (sandbox_prepare(&c) || sandbox_lock_down())
		return 9;
	fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
	return fd >= 0 ? 0 : 3;
}

static int fdatasync_child(void *arg)
{
	struct sandbox_config c = {.mode = SANDBOX_ON};

	(void)arg;
	if (sandbox_prepare(&c) || sandbox_lock_down())
		return 9;
	/* The main thread has no fdatasync: but a blk worker would. Allowed calls work. */
	return syscall(SYS_getpid) > 0 && syscall(SYS_gettid) > 0 ? 0 : 3;
}

static void test_log_mode(void)
{
	char err[512];

	/* Logged by the kernel (audit), not stopped: the call succeeds. */
	CHECK_EQ(in_child(log_child, NULL, err, sizeof(err)), 0);
	CHECK(!strstr(err, "seccomp:"));
	CHECK_EQ(in_child(fdatasync_child, NULL, err, sizeof(err)), 0);
}

/* A child whose threads wait, filtered, while the parent reads their /proc status. */
struct held {
	int ready[2], go[2];
};

static void *held_thread(void *arg)
{
	struct held *h = arg;
	char c;

	sandbox_thread_enter(SANDBOX_VCPU);
	if (read(h->go[0], &c, 1) != 1)
		_exit(6);
	return NULL;
}

static int held_child(void *arg)
{
	struct held *h = arg;
	struct sandbox_config c = {.mode = SANDBOX_ON};
	pthread_t t[3];
	char b;

	if (sandbox_prepare(&c))
		return 7;
	for (int i = 0; i < 3; i++)
		if (pthread_create(&t[i], NULL, held_thread, h))
			return 8;
	if (sandbox_lock_down() || write(h->ready[1], "r", 1) != 1)
		return 9;
	if (read(h->go[0], &b, 1) != 1)
		return 6;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	return 0;
}

/* Every thread of pid: how many, how many filtered (Seccomp 2), how many without capabilities. */
static void seccomp_threads(pid_t pid, int *threads, int *filtered, int *nocaps)
{
	char path[320], line[128];
	struct dirent *e;
	DIR *d;

	*threads = *filtered = *nocaps = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)pid, e->d_name);
		f = fopen(path, "re");
		++*threads;
		while (f && fgets(line, sizeof(line), f))
			if (!strcmp(line, "Seccomp:\t2\n"))
				++*filtered;
			else if (!strcmp(line, "CapEff:\t0000000000000000\n"))
				++*nocaps;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
}

static void test_every_thread(void)
{
	struct held h;
	int threads, filtered, nocaps, ws;
	char c;
	pid_t pid;

	if (pipe(h.ready) < 0 || pipe(h.go) < 0)
		return;
	pid = fork();
	if (pid == 0)
		_exit(held_child(&h));
	CHECK(read(h.ready[0], &c, 1) == 1);
	/* Threads that reached the gate before lock-down are filtered when it returns; one
	 * that arrives later installs its filter on arrival: wait until each has. */
	TEST_WAIT(
		(seccomp_threads(pid, &threads, &filtered, &nocaps), filtered == 4 && nocaps == 4),
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL));
	CHECK_EQ(threads, 4);
	CHECK_EQ(filtered, 4);
	CHECK_EQ(nocaps, 4); /* root's capabilities dropped in every thread, not only main */
	CHECK(write(h.go[1], "gggg", 4) == 4);
	CHECK(waitpid(pid, &ws, 0) == pid && WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	for (int i = 0; i < 2; i++) {
		close(h.ready[i]);
		close(h.go[i]);
	}
}

/* Without filters (seccomp = off), after a drop to nobody: root stays out of reach. */
static int drop_child(void *arg)
{
	const char *secret = arg;
	struct sandbox_config c = {.mode = SANDBOX_OFF, .drop = true, .uid = 65534, .gid = 65534};
	struct rlimit before, rl;
	int top = dup(0); /* the highest descriptor, about */

	if (top < 0 || getrlimit(RLIMIT_NOFILE, &before) < 0)
		return 8;
	close(top);
	if (sandbox_prepare(&c) || sandbox_lock_down())
		return 9;
	if (getuid() != 65534 || geteuid() != 65534 || getgid() != 65534 || getegid() != 65534)
		return 10;
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 || errno != EPERM)
		return 11;
	if (open(secret, O_RDONLY | O_CLOEXEC) >= 0 || errno != EACCES)
		return 12;
	if (prctl(PR_GET_DUMPABLE) != 0)
		return 13;
	/* Lowered to the descriptors in use and a little slack. */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max >= before.rlim_max ||
	    rl.rlim_cur != rl.rlim_max || rl.rlim_max < (rlim_t)top)
		return 14;
	return 0;
}

/* Root without a user to drop to still loses every capability: a file of another user's
 * with mode 0600 cannot be read. */
static int nocap_child(void *arg)
{
	const char *secret = arg;
	struct sandbox_config c = {.mode = SANDBOX_OFF};

	if (sandbox_prepare(&c) || sandbox_lock_down())
		return 9;
	if (getuid() != 0)
		return 10;
	if (open(secret, O_RDONLY | O_CLOEXEC) >= 0 || errno != EACCES)
		return 12;
	return 0;
}

/* The same drop with filters on: setuid(0) does not even reach the kernel. */
static int drop_filtered_child(void *arg)
{
	struct sandbox_config c = {.mode = SANDBOX_ON, .drop = true, .uid = 65534, .gid = 65534};

	(void)arg;
	if (sandbox_prepare(&c) || sandbox_lock_down())
		return 9;
	call_setuid0();
	return 0;
}

static void test_drop(void)
{
	char secret[] = "/tmp/mv-secret-XXXXXX", err[512];
	int fd;
	uid_t uid;
	gid_t gid;

	CHECK(sandbox_lookup_user("root", &uid, &gid) == 0 && uid == 0 && gid == 0);
	CHECK(sandbox_lookup_user("4242", &uid, &gid) == 0 && uid == 4242);
	CHECK(sandbox_lookup_user("no-such-user-mv", &uid, &gid) == -ENOENT);
	if (geteuid() != 0) {
		printf("    (not root: privilege drop not tested)\n");
		return;
	}
	fd = mkstemp(secret);
	CHECK(fd >= 0 && fchmod(fd, 0600) == 0);
	if (fd >= 0)
		close(fd);
	CHECK_EQ(in_child(drop_child, secret, err, sizeof(err)), 0);
	CHECK(chown(secret, 65534, 65534) == 0);
	CHECK_EQ(in_child(nocap_child, secret, err, sizeof(err)), 0);
	CHECK_EQ(in_child(drop_filtered_child, NULL, err, sizeof(err)), 1);
	CHECK(strstr(err, "outside its allowlist: setuid (") != NULL);
	unlink(secret);
}

/*
 * Snapshots: the main thread may create files in the snapshot directory through its
 * descriptor, and nowhere else: an absolute path passes seccomp's descriptor check (the path
 * ignores it) but not Landlock, where the kernel has it. Exit 0 when both held, 2 when the
 * file outside was created.
 */
static int snapdir_child(void *arg)
{
	const char *const *dirs = arg;
	struct sandbox_config c = {.mode = SANDBOX_ON, .snapshots = true};
	char outside[200];
	int fd;

	c.snapshot_dirfd = open(dirs[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c.snapshot_dirfd < 0 || sandbox_prepare(&c) || sandbox_lock_down())
		return 9;
	fd = openat(c.snapshot_dirfd, "inside", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return 3;
	snprintf(outside, sizeof(outside), "%s/outside", dirs[1]);
	fd = openat(c.snapshot_dirfd, outside, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		return 2;
	return errno == EACCES ? 0 : 4;
}

static void test_snapshot_dir(void)
{
	char in[] = "/tmp/mv-snapin-XXXXXX", out[] = "/tmp/mv-snapout-XXXXXX", err[512], path[64];
	const char *dirs[2] = {in, out};
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* VERSION */);
	int st;

	if (!mkdtemp(in) || !mkdtemp(out)) {
		CHECK(0);
		return;
	}
	st = in_child(snapdir_child, dirs, err, sizeof(err));
	if (abi < 1) {
		printf("    (no Landlock in this kernel: an absolute path escapes the "
		       "directory)\n");
		CHECK(st == 2);
	} else {
		CHECK_EQ(st, 0);
	}
	if (st != 0 && st != 2)
		printf("    child exit %d: %s\n", st, err);
	snprintf(path, sizeof(path), "%s/inside", in);
	CHECK(unlink(path) == 0);
	snprintf(path, sizeof(path), "%s/outside", out);
	unlink(path);
	rmdir(in);
	rmdir(out);
}

/* What the balloon does after lock-down: give pages back (main, vCPU), read its timer. */
static uint8_t *balloon_ram;

static void *balloon_vcpu(void *arg)
{
	(void)arg;
	sandbox_thread_enter(SANDBOX_VCPU);
	/* A trapped kick or DRIVER_OK serves the queues on the vCPU that made it. */
	if (madvise(balloon_ram + 16384, 16384, MADV_DONTNEED))
		_exit(4);
	return NULL;
}

static int balloon_child(void *arg)
{
	struct sandbox_config c = {.mode = SANDBOX_ON, .api = *(bool *)arg};
	struct itimerspec its = {.it_value.tv_nsec = 1000000};
	uint64_t ticks;
	pthread_t t;
	int tfd;

	if (sandbox_prepare(&c))
		return 7;
	balloon_ram = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (balloon_ram == MAP_FAILED || tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) ||
	    pthread_create(&t, NULL, balloon_vcpu, NULL))
		return 8;
	memset(balloon_ram, 1, 65536);
	if (sandbox_lock_down())
		return 9;
	pthread_join(t, NULL);
	if (madvise(balloon_ram, 16384, MADV_DONTNEED) || balloon_ram[0] || balloon_ram[16384] ||
	    read(tfd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return 3;
	/* The API's PATCH /balloon/statistics sets the interval: with --api-sock only. */
	its.it_interval.tv_sec = 5;
	timerfd_settime(tfd, 0, &its, NULL);
	return 0;
}

static void test_balloon_calls(void)
{
	char err[1024];
	bool api = true;

	CHECK_EQ(in_child(balloon_child, &api, err, sizeof(err)), 0);
	api = false;
	CHECK_EQ(in_child(balloon_child, &api, err, sizeof(err)), 1);
	CHECK(strstr(err, "timerfd_settime (") != NULL);
}

/* The call fn makes, allowed (it must then fail with EBADF) or killed by the filter. */
static void call_tunsetqueue(void)
{
	if (syscall(SYS_ioctl, -1, TUNSETQUEUE, NULL) == 0 || errno != EBADF)
		_exit(6);
}

static void call_tungetiff(void)
{
	if (syscall(SYS_ioctl, -1, TUNGETIFF, NULL) == 0 || errno != EBADF)
		_exit(6);
}

static void call_vhost_ring_err(void)
{
	if (syscall(SYS_ioctl, -1, VHOST_SET_VRING_ERR, NULL) == 0 || errno != EBADF)
		_exit(6);
}

static void call_io_uring_enter(void)
{
	if (syscall(SYS_io_uring_enter, -1, 1, 0, 0, NULL, 0) == 0 || errno != EBADF)
		_exit(6);
}

static void call_set_vcpu_events(void)
{
	if (syscall(SYS_ioctl, -1, KVM_SET_VCPU_EVENTS, NULL) == 0 || errno != EBADF)
		_exit(6);
}

/* fn in role: allowed on a machine with the devices in on, killed on one without. */
static void check_device_call(enum sandbox_role role, struct sandbox_config on, void (*fn)(void),
			      const char *name)
{
	struct role_case rc = {role, SANDBOX_ON, NULL, fn, "", 1};
	char err[512];

	with = on;
	CHECK_EQ(in_child(role_child, &rc, err, sizeof(err)), 0);
	with = (struct sandbox_config){0};
	check_kill((struct role_case){role, SANDBOX_ON, NULL, fn, name, 1});
}

/*
 * A machine's lists hold its devices' calls and no others: TAP queue ioctls with a NIC,
 * vhost's with vhost = on, io_uring_enter with an io_uring disk, on the event loop's and
 * the vCPUs' threads alike; never on another role's.
 */
static void test_device_calls(void)
{
	const enum sandbox_role roles[] = {SANDBOX_MAIN, SANDBOX_VCPU};

	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		check_device_call(roles[i], (struct sandbox_config){.tap = true}, call_tunsetqueue,
				  "ioctl (");
		check_device_call(roles[i], (struct sandbox_config){.tap = true}, call_tungetiff,
				  "ioctl (");
		check_device_call(roles[i], (struct sandbox_config){.vhost = true},
				  call_vhost_ring_err, "ioctl (");
		check_device_call(roles[i], (struct sandbox_config){.io_uring = true},
				  call_io_uring_enter, "io_uring_enter (");
	}
	/* One device's call is not another's: vhost's ioctls with a plain NIC. */
	with = (struct sandbox_config){.tap = true, .io_uring = true};
	check_kill((struct role_case){SANDBOX_VCPU, SANDBOX_ON, NULL, call_vhost_ring_err,
				      "ioctl (", 1});
	check_kill((struct role_case){SANDBOX_BLK_WORKER, SANDBOX_ON, NULL, call_io_uring_enter,
				      "io_uring_enter (", 1});
	with = (struct sandbox_config){0};
}

/*
 * KVM_SET_VCPU_EVENTS: an arm64 vCPU injects an external abort for an access KVM cannot
 * decode; x86 sets vCPU events only in a restore, before lock-down.
 */
static void test_vcpu_events(void)
{
	struct role_case rc = {SANDBOX_VCPU, SANDBOX_ON, NULL, call_set_vcpu_events, "ioctl (", 1};
	char err[512];

#ifdef __aarch64__
	CHECK_EQ(in_child(role_child, &rc, err, sizeof(err)), 0);
#else
	(void)err;
	check_kill(rc);
#endif
	rc.role = SANDBOX_MAIN;
	check_kill(rc);
}

/* A stat of a path, and a descriptor's as glibc's fstat() makes it: neither is allowed. */
static void call_stat_path(void)
{
	struct stat st;

	syscall(SYS_newfstatat, AT_FDCWD, "/etc/passwd", &st, 0);
}

static void call_stat_fd(void)
{
	struct stat st;

	syscall(SYS_newfstatat, 1, "", &st, AT_EMPTY_PATH);
}

/*
 * Streams opened in set-up and used after lock-down, as the exit report (/proc/self/smaps)
 * and --boot-report are (arg: a file to write; with arg NULL, only the read, without its
 * buffer given before: that first read stats the descriptor). Exit 0 when both worked.
 */
static int stream_child(void *arg)
{
	static char rbuf[BUFSIZ], wbuf[BUFSIZ];
	struct sandbox_config c = {.mode = SANDBOX_ON};
	FILE *in = fopen("/proc/self/status", "re"), *out = arg ? fopen(arg, "we") : NULL;
	char line[256];

	if (!in || (arg && !out))
		return 8;
	if (arg &&
	    (sandbox_stream(in, rbuf, sizeof(rbuf)) || sandbox_stream(out, wbuf, sizeof(wbuf))))
		return 8;
	if (sandbox_prepare(&c) || sandbox_lock_down())
		return 9;
	if (!fgets(line, sizeof(line), in) || strncmp(line, "Name:", 5))
		return 3;
	fclose(in);
	if (out && (fprintf(out, "report\n") != 7 || fclose(out)))
		return 4;
	return 0;
}

static void test_stat(void)
{
	char path[] = "/tmp/mv-sbstream-XXXXXX", err[512], got[16] = "";
	int fd = mkstemp(path), st;

	check_kill((struct role_case){SANDBOX_MAIN, SANDBOX_ON, NULL, call_stat_path,
				      "newfstatat (", 1});
	check_kill((struct role_case){SANDBOX_MAIN, SANDBOX_ON, NULL, call_stat_fd, "newfstatat (",
				      1});
	check_kill((struct role_case){SANDBOX_VCPU, SANDBOX_ON, NULL, call_stat_path,
				      "newfstatat (", 1});
	/* A machine that writes snapshots looks at their files before replacing them. */
	int dir = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);

	CHECK(dir >= 0);
	check_device_call(SANDBOX_MAIN,
			  (struct sandbox_config){.snapshots = true, .snapshot_dirfd = dir},
			  call_stat_path, "newfstatat (");
	with = (struct sandbox_config){.snapshots = true, .snapshot_dirfd = dir};
	check_kill((struct role_case){SANDBOX_VCPU, SANDBOX_ON, NULL, call_stat_path,
				      "newfstatat (", 1});
	with = (struct sandbox_config){0};
	if (dir >= 0)
		close(dir);
	CHECK(fd >= 0);
	st = in_child(stream_child, path, err, sizeof(err));
	CHECK_EQ(st, 0);
	if (st)
		printf("    child exit %d: %s\n", st, err);
	CHECK(fd >= 0 && pread(fd, got, sizeof(got) - 1, 0) == 7 && !strcmp(got, "report\n"));
	/* Without its buffer given in set-up, the stream's first read stats it: stopped. */
	CHECK_EQ(in_child(stream_child, NULL, err, sizeof(err)), 1);
	CHECK(strstr(err, "outside its allowlist: newfstatat (") != NULL);
	if (fd >= 0)
		close(fd);
	unlink(path);
}

/*
 * Descriptors inherited from the launching process are closed at lock-down; those set-up
 * opened stay, also one that took the number of an inherited descriptor set-up closed.
 * Exit 0 when so.
 */
static int inherit_child(void *arg)
{
	struct sandbox_config c = {.mode = SANDBOX_ON};
	int p[2], q[2], own;

	(void)arg;
	if (pipe(p) < 0 || pipe(q) < 0)
		return 8;
	sandbox_note_inherited(); /* p and q came from the launching process */
	own = eventfd(0, EFD_CLOEXEC);
	/* q[1]'s number, closed in set-up, now a descriptor of its own */
	if (own < 0 || close(q[1]) < 0 || dup2(own, q[1]) != q[1])
		return 8;
	if (sandbox_prepare(&c) || sandbox_lock_down())
		return 9;
	/* (close is what the main thread's list has to tell an open descriptor from none) */
	if (close(p[0]) == 0 || close(p[1]) == 0 || close(q[0]) == 0 || errno != EBADF)
		return 3;
	if (close(own) < 0 || close(q[1]) < 0)
		return 4;
	if (write(STDERR_FILENO, "", 0) < 0)
		return 5;
	return 0;
}

static void test_inherited(void)
{
	char err[512];
	int st = in_child(inherit_child, NULL, err, sizeof(err));

	CHECK_EQ(st, 0);
	if (st)
		printf("    child exit %d: %s\n", st, err);
}

void test_sandbox(void)
{
	test_balloon_calls();
	test_roles();
	test_log_mode();
	test_every_thread();
	test_drop();
	test_snapshot_dir();
	test_vsock_calls();
	test_timer_calls();
	test_device_calls();
	test_vcpu_events();
	test_stat();
	test_inherited();
}
