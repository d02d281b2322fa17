/*
 * nettool: one TCP transfer, timed. Runs in the guest and on the (emulated) host.
 *   nettool recv PORT             accept one connection, copy it to stdout until EOF
 *   nettool send HOST PORT [MIB]  send stdin (or MIB MiB of "microvm-pattern\n"), then close
 *   nettool mktap NAME [mq [UID]] create a persistent TAP (multi-queue with "mq", owned by
 *                                 UID, who may then open it without privileges)
 *   nettool deltap NAME [mq]      delete it again
 *   nettool runas UID GID CMD...  run CMD as that user and group, without groups (root only)
 *   nettool measure FILE CMD...   run CMD on a new pseudo-terminal (stdin and stdout relayed:
 *                                 every monitor sees a terminal; its pid in FILE.pid), then
 *                                 write "ms MS maxrss_kib KIB status STATUS first_output MS
 *                                 mark MS mark2 MS" to FILE: exec to exit, CMD's peak
 *                                 resident set, exec to its first output and to the first
 *                                 time the output holds $MEASURE_MARK, $MEASURE_MARK2
 *                                 (-1: never)
 *   nettool stall SOCKET          a slow client of an HTTP server on a Unix socket: half a
 *                                 request, then nothing; prints how long until the server
 *                                 closed the connection (exit 0), or fails (exit 1)
 * Both print "nettool DIRECTION BYTES bytes SECONDS s MB/s" on stderr when done.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <poll.h>
#include <pty.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* read() that retries on EINTR and reports failures. */
static ssize_t read_chunk(int fd, char *buf)
{
	ssize_t r;

	do
		r = read(fd, buf, CHUNK);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		perror("nettool: read");
	return r;
}

static void report(const char *dir, unsigned long long bytes, double secs)
{
	fprintf(stderr, "nettool %s %llu bytes %.3f s %.1f MB/s\n", dir, bytes, secs,
		secs > 0 ? bytes / secs / 1e6 : 0.0);
}

static int do_recv(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0), s;
	unsigned long long total = 0;
	char *buf = malloc(CHUNK);
	double t0;

	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (!buf || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 1) < 0) {
		perror("nettool: listen");
		return 1;
	}
	fprintf(stderr, "nettool listening on %d\n", port);
	s = accept(ls, NULL, NULL);
	if (s < 0) {
		perror("nettool: accept");
		return 1;
	}
	t0 = now();
	for (;;) {
		ssize_t r = read_chunk(s, buf);

		if (r < 0)
			return 1;
		if (r == 0)
			break;
		total += (size_t)r;
		if (write_all(1, buf, (size_t)r) < 0) {
			perror("nettool: write");
			return 1;
		}
	}
	report("received", total, now() - t0);
	return 0;
}

static int do_send(const char *host, int port, long mib)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	unsigned long long total = 0, want = (unsigned long long)mib << 20;
	char *buf = malloc(CHUNK);
	int s = -1;
	double t0;

	if (!buf || inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		fprintf(stderr, "nettool: bad address '%s'\n", host);
		return 1;
	}
	/* The receiver may still be starting: retry for up to 30 s. */
	for (int i = 0; i < 300; i++) {
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0)
			break;
		close(s);
		s = -1;
		usleep(100000);
	}
	if (s < 0) {
		perror("nettool: connect");
		return 1;
	}
	/* The pattern stream equals `yes microvm-pattern | head -c BYTES` (CHUNK % 16 == 0). */
	for (size_t i = 0; i < CHUNK; i++)
		buf[i] = "microvm-pattern\n"[i % 16];
	t0 = now();
	for (;;) {
		ssize_t r;

		if (mib >= 0) {
			r = want - total < CHUNK ? (ssize_t)(want - total) : CHUNK;
		} else {
			r = read_chunk(0, buf);
			if (r < 0)
				return 1;
		}
		if (r == 0)
			break;
		if (write_all(s, buf, (size_t)r) < 0) {
			perror("nettool: send");
			return 1;
		}
		total += (size_t)r;
	}
	/* Wait for the receiver to take everything: it closes after EOF. */
	shutdown(s, SHUT_WR);
	while (read(s, buf, CHUNK) > 0)
		;
	report("sent", total, now() - t0);
	close(s);
	return 0;
}

static int do_tap(const char *name, bool mq, int persist, long owner)
{
	struct ifreq ifr = {0};
	int fd = open("/dev/net/tun", O_RDWR);

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (mq ? IFF_MULTI_QUEUE : 0);
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0 ||
	    (owner >= 0 && ioctl(fd, TUNSETOWNER, owner) < 0) ||
	    ioctl(fd, TUNSETPERSIST, persist) < 0) {
		perror("nettool: tap");
		return 1;
	}
	close(fd);
	return 0;
}

static int do_runas(uid_t uid, gid_t gid, char **cmd)
{
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		perror("nettool: runas");
		return 1;
	}
	execvp(cmd[0], cmd);
	perror(cmd[0]);
	return 127;
}

/* A string looked for in a stream read piece by piece; at is when it was first seen. */
struct mark {
	const char *s;
	size_t len, matched;
	double at;
};

static void mark_init(struct mark *m, const char *env)
{
	m->s = getenv(env);
	m->len = m->s ? strlen(m->s) : 0;
	m->matched = 0;
	m->at = -1;
}

static void mark_scan(struct mark *m, const char *buf, size_t n)
{
	for (size_t i = 0; m->len && m->at < 0 && i < n; i++) {
		m->matched = buf[i] == m->s[m->matched] ? m->matched + 1 : buf[i] == m->s[0];
		if (m->matched == m->len)
			m->at = now();
	}
}

static int do_measure(const char *file, char **cmd)
{
	static char buf[4096];
	struct mark mark[2];
	double t0 = now(), first = -1;
	int master, status = 0;
	bool in_open = true;
	struct rusage ru;
	FILE *f;
	pid_t pid;

	mark_init(&mark[0], "MEASURE_MARK");
	mark_init(&mark[1], "MEASURE_MARK2");
	pid = forkpty(&master, NULL, NULL, NULL);

	if (pid < 0) {
		perror("nettool: forkpty");
		return 1;
	}
	if (pid == 0) {
		execvp(cmd[0], cmd);
		perror(cmd[0]);
		_exit(127);
	}
	snprintf(buf, sizeof(buf), "%s.pid", file);
	f = fopen(buf, "w");
	if (f) {
		fprintf(f, "%d\n", (int)pid);
		fclose(f);
	}
	for (;;) {
		struct pollfd p[2] = {{master, POLLIN, 0}, {in_open ? 0 : -1, POLLIN, 0}};
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			n = read(master, buf, sizeof(buf));
			if (n <= 0)
				break; /* EIO: the terminal's last user is gone */
			if (first < 0)
				first = now();
			/* A mark may straddle reads: match byte by byte. */
			mark_scan(&mark[0], buf, (size_t)n);
			mark_scan(&mark[1], buf, (size_t)n);
			if (write_all(1, buf, (size_t)n))
				break;
		}
		if (p[1].revents) {
			n = read(0, buf, sizeof(buf));
			if (n <= 0)
				in_open = false;
			else if (write_all(master, buf, (size_t)n))
				in_open = false;
		}
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("nettool: wait4");
		return 1;
	}
	f = fopen(file, "w");
	if (!f) {
		perror(file);
		return 1;
	}
	fprintf(f, "ms %.1f maxrss_kib %ld status %d first_output %.1f mark %.1f mark2 %.1f\n",
		(now() - t0) * 1e3, ru.ru_maxrss,
		WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
		first < 0 ? -1 : (first - t0) * 1e3, mark[0].at < 0 ? -1 : (mark[0].at - t0) * 1e3,
		mark[1].at < 0 ? -1 : (mark[1].at - t0) * 1e3);
	fclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* Half a request, then silence: a slowloris, until the server gives up on it. */
static int do_stall(const char *path)
{
	static const char half[] = "PUT /actions HTTP/1.1\r\nHost: localhost\r\nContent-Le";
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[512];
	double t0;
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write_all(fd, half, sizeof(half) - 1)) {
		perror(path);
		return 1;
	}
	t0 = now();
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		; /* a reply to half a request would be a bug: keep reading to the close */
	if (n < 0 && errno != ECONNRESET) {
		perror("nettool stall: read");
		return 1;
	}
	printf("nettool stall: closed by the server after %.1f s\n", now() - t0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "stall"))
		return do_stall(argv[2]);
	if (argc >= 4 && !strcmp(argv[1], "measure"))
		return do_measure(argv[2], argv + 3);
	if (argc >= 5 && !strcmp(argv[1], "runas"))
		return do_runas((uid_t)atol(argv[2]), (gid_t)atol(argv[3]), argv + 4);
	if (argc >= 3 && argc <= 5 && !strcmp(argv[1], "mktap"))
		return do_tap(argv[2], argc >= 4, 1, argc == 5 ? atol(argv[4]) : -1);
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "deltap"))
		return do_tap(argv[2], argc == 4, 0, -1);
	if (argc == 3 && !strcmp(argv[1], "recv"))
		return do_recv(atoi(argv[2]));
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "send"))
		return do_send(argv[2], atoi(argv[3]), argc == 5 ? atol(argv[4]) : -1);
	fprintf(stderr,
		"usage: nettool recv PORT | send HOST PORT [MIB] | mktap NAME [mq [UID]] | "
		"deltap NAME [mq] | runas UID GID CMD... | measure FILE CMD... | stall SOCKET\n");
	return 2;
}
