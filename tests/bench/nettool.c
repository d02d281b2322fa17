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
 *   nettool vsock-recv PORT       recv, over AF_VSOCK (in the guest)
 *   nettool vsock-send CID PORT [MIB]  send, over AF_VSOCK
 *   nettool uds-recv PATH         recv on a Unix socket (a vsock device's "<uds_path>_<port>")
 *   nettool uds-send PATH PORT [MIB]  send through a vsock device's Unix socket: connect to
 *                                 PATH, "CONNECT PORT\n", wait for "OK <host port>\n"
 *   nettool vsock-many CID PORT N open N connections one after the other, each writing one
 *                                 byte and reading to EOF (in the guest)
 *   nettool uds-many PATH N       accept N connections on a Unix socket, each answering the
 *                                 byte it reads with its count, then closing
 *   nettool uds-hold PATH         accept one connection on a Unix socket and never read it
 *   nettool vsock-echo PORT       accept one AF_VSOCK connection, write back what it reads
 *                                 until EOF (in the guest)
 *   nettool vsock-ping CID PORT COUNT  COUNT round trips of 64 bytes to an echo server: write
 *                                 64 bytes, read them back; after 10 round trips not counted,
 *                                 prints "nettool rtt count N median_us U mean_us U min_us U
 *                                 max_us U" on stderr
 *   nettool uds-ping PATH PORT COUNT   the same through a vsock device's Unix socket (CONNECT)
 *   nettool speed                 how fast this machine copies memory now: 256 copies of
 *                                 1 MiB, timed; prints "MB/s" on stdout (a probe of an
 *                                 emulated host's own speed, which moves with the machine
 *                                 under it)
 * The send modes retry a refused or reset connection for 30 s (NETTOOL_ONCE=1: one try).
 * All transfers print "nettool DIRECTION BYTES bytes SECONDS s MB/s" on stderr when done;
 * each reads and writes 256 KiB at a time, NETTOOL_CHUNK=BYTES (a multiple of 16) instead.
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
#include <linux/vm_sockets.h>

/* The size of each read and write of a transfer: 256 KiB, or $NETTOOL_CHUNK bytes. */
static size_t chunk = 256 * 1024;

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
		r = read(fd, buf, chunk);
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

/* A listening socket of family domain at address a; says so with what (a port or a path). */
static int listen_on(int domain, const void *a, socklen_t len, const char *what)
{
	int one = 1, ls = socket(domain, SOCK_STREAM, 0);

	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (const struct sockaddr *)a, len) < 0 || listen(ls, 128) < 0) {
		perror("nettool: listen");
		return -1;
	}
	fprintf(stderr, "nettool listening on %s\n", what);
	return ls;
}

static int unix_addr(struct sockaddr_un *sa, const char *path)
{
	*sa = (struct sockaddr_un){.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa->sun_path)) {
		fprintf(stderr, "nettool: '%s' is too long for a Unix socket\n", path);
		return -1;
	}
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

/* Accept one connection on ls, copy it to stdout until EOF. */
static int recv_one(int ls)
{
	unsigned long long total = 0;
	char *buf = malloc(chunk);
	double t0;
	int s;

	if (ls < 0 || !buf)
		return 1;
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

static int do_recv(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	char what[16];

	snprintf(what, sizeof(what), "%d", port);
	return recv_one(listen_on(AF_INET, &a, sizeof(a), what));
}

static int do_vsock_recv(int port)
{
	struct sockaddr_vm a = {
		.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY};
	char what[16];

	snprintf(what, sizeof(what), "%d", port);
	return recv_one(listen_on(AF_VSOCK, &a, sizeof(a), what));
}

static int do_uds_recv(const char *path)
{
	struct sockaddr_un a;

	unlink(path);
	return unix_addr(&a, path) ? 1 : recv_one(listen_on(AF_UNIX, &a, sizeof(a), path));
}

/*
 * Connect to a (len bytes of family domain): for 30 s while it is refused or reset (the
 * receiver may still be starting), once with NETTOOL_ONCE. The socket, or -1 (said).
 */
static int connect_to(int domain, const void *a, socklen_t len)
{
	int tries = getenv("NETTOOL_ONCE") ? 1 : 300, s = -1;

	for (int i = 0; i < tries; i++) {
		s = socket(domain, SOCK_STREAM, 0);
		if (connect(s, (const struct sockaddr *)a, len) == 0)
			return s;
		close(s);
		if (i + 1 < tries)
			usleep(100000);
	}
	perror("nettool: connect");
	return -1;
}

/*
 * A vsock device's host protocol on s: "CONNECT port", answered "OK <host port>". False
 * (said) when the answer is anything else or none (nothing listens in the guest).
 */
static bool handshake(int s, int port)
{
	char line[32];
	size_t n = 0;

	dprintf(s, "CONNECT %d\n", port);
	while (n < sizeof(line) - 1 && read(s, line + n, 1) == 1 && line[n] != '\n')
		n++;
	line[n] = 0;
	if (strncmp(line, "OK ", 3)) {
		fprintf(stderr, "nettool: CONNECT %d answered '%s'\n", port, line);
		return false;
	}
	fprintf(stderr, "nettool: CONNECT %d: %s\n", port, line);
	return true;
}

/* A connection through the vsock device's Unix socket path to guest port port, or -1. */
static int uds_connect(const char *path, int port)
{
	int tries = getenv("NETTOOL_ONCE") ? 1 : 300;
	struct sockaddr_un a;

	if (unix_addr(&a, path))
		return -1;
	for (int i = 0; i < tries; i++) {
		int s = connect_to(AF_UNIX, &a, sizeof(a));

		if (s < 0 || handshake(s, port))
			return s;
		close(s);
		if (i + 1 < tries)
			usleep(100000);
	}
	return -1;
}

static int send_stream(int s, long mib);

static int do_send(const char *host, int port, long mib)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};

	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		fprintf(stderr, "nettool: bad address '%s'\n", host);
		return 1;
	}
	return send_stream(connect_to(AF_INET, &a, sizeof(a)), mib);
}

/* Send stdin (mib < 0) or mib MiB of the pattern on s, then wait for the receiver's close. */
static int send_stream(int s, long mib)
{
	unsigned long long total = 0, want = (unsigned long long)mib << 20;
	char *buf = malloc(chunk);
	double t0;

	if (s < 0 || !buf)
		return 1;
	/* The pattern stream equals `yes microvm-pattern | head -c BYTES` (chunk % 16 == 0). */
	for (size_t i = 0; i < chunk; i++)
		buf[i] = "microvm-pattern\n"[i % 16];
	t0 = now();
	for (;;) {
		ssize_t r;

		if (mib >= 0) {
			r = want - total < chunk ? (ssize_t)(want - total) : (ssize_t)chunk;
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
	while (read(s, buf, chunk) > 0)
		;
	report("sent", total, now() - t0);
	close(s);
	return 0;
}

static int do_vsock_send(unsigned cid, int port, long mib)
{
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = cid};

	return send_stream(connect_to(AF_VSOCK, &a, sizeof(a)), mib);
}

/* n connections one after the other: each writes a byte and reads until the peer closes. */
static int do_vsock_many(unsigned cid, int port, int n)
{
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = cid};
	char buf[64];
	int ok = 0;

	for (int i = 0; i < n; i++) {
		int s = connect_to(AF_VSOCK, &a, sizeof(a));
		ssize_t r, got = 0;

		if (s < 0 || write(s, "x", 1) != 1)
			break;
		while ((r = read(s, buf, sizeof(buf))) > 0)
			got += r;
		close(s);
		ok += got > 0;
	}
	printf("nettool vsock-many %d of %d connections answered\n", ok, n);
	return ok == n ? 0 : 1;
}

/* Accept n connections on a Unix socket: each gets the number of its byte, then a close. */
static int do_uds_many(const char *path, int n)
{
	struct sockaddr_un a;
	int ls, done = 0;
	char c;

	unlink(path);
	if (unix_addr(&a, path) || (ls = listen_on(AF_UNIX, &a, sizeof(a), path)) < 0)
		return 1;
	for (; done < n; done++) {
		int s = accept(ls, NULL, NULL);

		if (s < 0 || read(s, &c, 1) != 1)
			break;
		dprintf(s, "%d\n", done);
		close(s);
	}
	fprintf(stderr, "nettool uds-many accepted %d\n", done);
	return done == n ? 0 : 1;
}

/* Accept one connection and never read it (until killed). */
static int do_uds_hold(const char *path)
{
	struct sockaddr_un a;
	int ls;

	unlink(path);
	if (unix_addr(&a, path) || (ls = listen_on(AF_UNIX, &a, sizeof(a), path)) < 0 ||
	    accept(ls, NULL, NULL) < 0)
		return 1;
	fprintf(stderr, "nettool uds-hold: holding a connection\n");
	for (;;)
		pause();
}

/* Accept one AF_VSOCK connection on port and write back everything it reads, until EOF. */
static int do_vsock_echo(int port)
{
	struct sockaddr_vm a = {
		.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY};
	unsigned long long total = 0;
	char what[16], buf[4096];
	int ls, s;

	snprintf(what, sizeof(what), "%d", port);
	ls = listen_on(AF_VSOCK, &a, sizeof(a), what);
	if (ls < 0 || (s = accept(ls, NULL, NULL)) < 0) {
		perror("nettool: accept");
		return 1;
	}
	for (;;) {
		ssize_t r = read(s, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			perror("nettool: read");
			return 1;
		}
		if (r == 0)
			break;
		if (write_all(s, buf, (size_t)r) < 0) {
			perror("nettool: write");
			return 1;
		}
		total += (size_t)r;
	}
	fprintf(stderr, "nettool echoed %llu bytes\n", total);
	close(s);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define PING_BYTES  64
#define PING_WARMUP 10

/* count round trips of PING_BYTES on s (an echo server's connection), after PING_WARMUP. */
static int ping(int s, int count)
{
	double *rtt = calloc(count > 0 ? count : 1, sizeof(*rtt)), sum = 0;
	char out[PING_BYTES], in[PING_BYTES];

	if (s < 0 || !rtt || count <= 0)
		return 1;
	for (int i = 0; i < PING_BYTES; i++)
		out[i] = (char)('a' + i % 26);
	for (int i = -PING_WARMUP; i < count; i++) {
		double t0 = now();
		size_t got = 0;

		if (write_all(s, out, sizeof(out)) < 0) {
			perror("nettool: ping write");
			return 1;
		}
		while (got < sizeof(in)) {
			ssize_t r = read(s, in + got, sizeof(in) - got);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				fprintf(stderr,
					"nettool: ping: the echo ended after %d round trips\n",
					i + PING_WARMUP);
				return 1;
			}
			got += (size_t)r;
		}
		if (memcmp(in, out, sizeof(in))) {
			fprintf(stderr, "nettool: ping: the echo differs\n");
			return 1;
		}
		if (i >= 0)
			sum += rtt[i] = (now() - t0) * 1e6;
	}
	close(s);
	qsort(rtt, count, sizeof(*rtt), cmp_double);
	fprintf(stderr,
		"nettool rtt count %d median_us %.1f mean_us %.1f min_us %.1f max_us %.1f\n", count,
		count % 2 ? rtt[count / 2] : (rtt[count / 2 - 1] + rtt[count / 2]) / 2, sum / count,
		rtt[0], rtt[count - 1]);
	return 0;
}

static int do_vsock_ping(unsigned cid, int port, int count)
{
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = cid};

	return ping(connect_to(AF_VSOCK, &a, sizeof(a)), count);
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

/* 256 MiB copied 1 MiB at a time between two buffers, timed: MB/s on stdout. */
static int do_speed(void)
{
	size_t sz = 1 << 20;
	char *a = malloc(sz), *b = malloc(sz);
	volatile char sink = 0;
	double t0;

	if (!a || !b) {
		perror("nettool speed");
		return 1;
	}
	memset(a, 1, sz);
	memset(b, 2, sz);
	t0 = now();
	for (int i = 0; i < 256; i++) {
		memcpy(i % 2 ? a : b, i % 2 ? b : a, sz);
		sink += a[i * 4096];
	}
	printf("%.0f\n", 256 * (double)sz / 1e6 / (now() - t0));
	free(a);
	free(b);
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = getenv("NETTOOL_CHUNK");

	if (c) {
		long v = atol(c);

		if (v < 16 || v % 16 || v > (1L << 30)) {
			fprintf(stderr, "nettool: NETTOOL_CHUNK=%s: want a multiple of 16 bytes\n",
				c);
			return 2;
		}
		chunk = (size_t)v;
	}
	if (argc == 2 && !strcmp(argv[1], "speed"))
		return do_speed();
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
	if (argc == 3 && !strcmp(argv[1], "vsock-recv"))
		return do_vsock_recv(atoi(argv[2]));
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "vsock-send"))
		return do_vsock_send(strtoul(argv[2], NULL, 0), atoi(argv[3]),
				     argc == 5 ? atol(argv[4]) : -1);
	if (argc == 3 && !strcmp(argv[1], "uds-recv"))
		return do_uds_recv(argv[2]);
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "uds-send"))
		return send_stream(uds_connect(argv[2], atoi(argv[3])),
				   argc == 5 ? atol(argv[4]) : -1);
	if (argc == 5 && !strcmp(argv[1], "vsock-many"))
		return do_vsock_many(strtoul(argv[2], NULL, 0), atoi(argv[3]), atoi(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "uds-many"))
		return do_uds_many(argv[2], atoi(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "uds-hold"))
		return do_uds_hold(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "vsock-echo"))
		return do_vsock_echo(atoi(argv[2]));
	if (argc == 5 && !strcmp(argv[1], "vsock-ping"))
		return do_vsock_ping(strtoul(argv[2], NULL, 0), atoi(argv[3]), atoi(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "uds-ping"))
		return ping(uds_connect(argv[2], atoi(argv[3])), atoi(argv[4]));
	fprintf(stderr,
		"usage: nettool recv PORT | send HOST PORT [MIB] | mktap NAME [mq [UID]] | "
		"deltap NAME [mq] | runas UID GID CMD... | measure FILE CMD... | stall SOCKET | "
		"vsock-recv PORT | vsock-send CID PORT [MIB] | uds-recv PATH | "
		"uds-send PATH PORT [MIB] | vsock-many CID PORT N | uds-many PATH N | "
		"uds-hold PATH | vsock-echo PORT | vsock-ping CID PORT COUNT | "
		"uds-ping PATH PORT COUNT | speed\n");
	return 2;
}
