/* ctl: a small HTTP client of the API (requests written here, replies read by http-parser). */
#include "api/ctl.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

static const char ctl_usage[] =
	"usage: microvm ctl VM COMMAND [ARGS]    VM: a name (--name) or a socket path\n"
	"       microvm ctl list                 the named VMs of this user, and their state\n"
	"\n"
	"  info               GET /            id, state, version\n"
	"  config             GET /vm/config   the machine in Firecracker's shapes\n"
	"  machine            GET /machine     regions, interrupts, devices (microvm's)\n"
	"  start              PUT /actions     InstanceStart\n"
	"  pause | resume     PATCH /vm        Paused | Resumed\n"
	"  stop               PUT /actions     Stop (microvm's): the VM ends, status 4\n"
	"  snapshot STATE MEM PUT /snapshot/create   save the paused VM (files in its\n"
	"                                            snapshot directory)\n"
	"  restore STATE MEM  PUT /snapshot/load     into a VM started with --api-sock\n"
	"                                            alone; it runs at once\n"
	"  get PATH           GET PATH\n"
	"  put PATH JSON      PUT PATH with JSON as its body\n"
	"  patch PATH JSON    PATCH PATH with JSON as its body\n"
	"\n"
	"A reply's body goes to standard output; a refusal's fault_message to standard error,\n"
	"with exit status 1 (2: usage, 3: no VM answers on the socket).\n";

bool api_valid_name(const char *name)
{
	size_t n = strlen(name);

	if (!n || n > 64 || name[0] == '.')
		return false;
	for (; *name; name++)
		if (!isalnum((unsigned char)*name) && !strchr("._-", *name))
			return false;
	return true;
}

static int runtime_dir(char *buf, size_t size, bool create)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (xdg && *xdg)
		n = snprintf(buf, size, "%s/microvm", xdg);
	else if (geteuid() == 0)
		n = snprintf(buf, size, "/run/microvm");
	else
		n = snprintf(buf, size, "/tmp/microvm-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	/* Root's directory is readable by the users its VMs drop to; each socket is 0600. */
	if (create && mkdir(buf, geteuid() == 0 && !(xdg && *xdg) ? 0755 : 0700) < 0 &&
	    errno != EEXIST) {
		log_error("%s: %s", buf, strerror(errno));
		return -errno;
	}
	/* Somebody else's directory (made first in /tmp) would hand them our sockets. */
	struct stat st;

	if (lstat(buf, &st) == 0 &&
	    (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))) {
		log_error("%s: not a directory of uid %u that only it may write", buf,
			  (unsigned)geteuid());
		return -EPERM;
	}
	return 0;
}

int api_sock_path(const char *name, char *buf, size_t size, bool create)
{
	char dir[256];
	int err = runtime_dir(dir, sizeof(dir), create);

	if (!err && (size_t)snprintf(buf, size, "%s/%s.sock", dir, name) >= size)
		err = -ENAMETOOLONG;
	if (err)
		log_error("--name %s: no socket path: %s", name, strerror(-err));
	return err;
}

/* ---- one request ---- */

struct reply {
	int status;
	char *body;
	size_t len;
	bool done;
};

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct reply *r = p->data;
	char *b;

	if (r->len + len > (1u << 20)) /* a reply that big is not an API's */
		return -1;
	b = realloc(r->body, r->len + len + 1);
	if (!b)
		return -1;
	memcpy(b + r->len, at, len);
	r->body = b;
	r->len += len;
	b[r->len] = '\0';
	return 0;
}

static int on_complete(http_parser *p)
{
	struct reply *r = p->data;

	r->status = (int)p->status_code;
	r->done = true;
	return 0;
}

/* Send one request; fill r. 0, -1 when nothing answers at sock (said unless quiet). */
static int request(const char *sock, const char *method, const char *path, const char *body,
		   struct reply *r, bool quiet)
{
	static const http_parser_settings settings = {.on_body = on_body,
						      .on_message_complete = on_complete};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 60};
	http_parser p;
	char *req = NULL, buf[4096];
	int fd, n;

	memset(r, 0, sizeof(*r));
	if (strlen(sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "microvm ctl: %s: path too long\n", sock);
		return -1;
	}
	memcpy(sa.sun_path, sock, strlen(sock));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (!quiet)
			fprintf(stderr, "microvm ctl: %s: %s\n", sock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = asprintf(&req,
		     "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
		     "%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     method, path, body ? "Content-Type: application/json\r\n" : "",
		     body ? strlen(body) : 0, body ? body : "");
	if (n < 0 || write(fd, req, (size_t)n) != n) {
		fprintf(stderr, "microvm ctl: %s: cannot send: %s\n", sock, strerror(errno));
		free(req);
		close(fd);
		return -1;
	}
	free(req);
	http_parser_init(&p, HTTP_RESPONSE);
	p.data = r;
	while (!r->done) {
		ssize_t got = read(fd, buf, sizeof(buf));

		if (got < 0 && errno == EINTR)
			continue;
		/* 0 bytes tells a body without a length that it ended. */
		if (http_parser_execute(&p, &settings, buf, got > 0 ? (size_t)got : 0) !=
			    (size_t)(got > 0 ? got : 0) ||
		    got <= 0)
			break;
	}
	close(fd);
	if (!r->done) {
		fprintf(stderr, "microvm ctl: %s: no complete reply\n", sock);
		return -1;
	}
	return 0;
}

/* Print a reply: the body (or the fault) and the exit status it means. */
static int show(const struct reply *r)
{
	if (r->status >= 200 && r->status < 300) {
		if (r->len)
			printf("%s\n", r->body);
		return 0;
	}
	json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(j, "fault_message"));

	fprintf(stderr, "microvm ctl: %d: %s\n", r->status, msg ? msg : r->body ? r->body : "");
	json_decref(j);
	return 1;
}

/* microvm ctl list: every socket in the runtime directory that answers. */
static int list(void)
{
	char dir[256], path[512];
	struct dirent *e;
	DIR *d;

	if (runtime_dir(dir, sizeof(dir), false) || !(d = opendir(dir)))
		return 0; /* no VM was ever named here */
	printf("%-24s %-12s %s\n", "NAME", "STATE", "SOCKET");
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		struct reply r;

		if (n < 6 || strcmp(e->d_name + n - 5, ".sock"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (request(path, "GET", "/", NULL, &r, true) == 0) {
			json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
			const char *st = json_string_value(json_object_get(j, "state"));

			printf("%-24.*s %-12s %s\n", (int)(n - 5), e->d_name, st ? st : "?", path);
			json_decref(j);
		}
		free(r.body);
	}
	closedir(d);
	return 0;
}

/* The body of snapshot (create) or restore (load, resumed) for the files state and mem. */
static char *snapshot_body(const char *path, const char *state, const char *mem)
{
	json_t *j =
		!strcmp(path, "/snapshot/create")
			? json_pack("{s:s,s:s,s:s}", "snapshot_type", "Full", "snapshot_path",
				    state, "mem_file_path", mem)
			: json_pack("{s:s,s:{s:s,s:s},s:b}", "snapshot_path", state, "mem_backend",
				    "backend_type", "File", "backend_path", mem, "resume_vm", 1);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

int ctl_main(int argc, char **argv)
{
	static const struct {
		const char *cmd, *method, *path, *body;
		int nargs; /* PATH, PATH JSON */
	} cmds[] = {
		{"info", "GET", "/", NULL, 0},
		{"config", "GET", "/vm/config", NULL, 0},
		{"machine", "GET", "/machine", NULL, 0},
		{"start", "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 0},
		{"pause", "PATCH", "/vm", "{\"state\": \"Paused\"}", 0},
		{"resume", "PATCH", "/vm", "{\"state\": \"Resumed\"}", 0},
		{"stop", "PUT", "/actions", "{\"action_type\": \"Stop\"}", 0},
		{"get", "GET", NULL, NULL, 1},
		{"put", "PUT", NULL, NULL, 2},
		{"patch", "PATCH", NULL, NULL, 2},
		{"snapshot", "PUT", "/snapshot/create", NULL, 2},
		{"restore", "PUT", "/snapshot/load", NULL, 2},
	};
	char *body = NULL;
	char sock[512];
	struct reply r;
	int status;

	if (argc == 2 && !strcmp(argv[1], "list"))
		return list();
	if (argc < 3 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help")) {
		fputs(ctl_usage, argc < 2 || strcmp(argv[1], "help") ? stderr : stdout);
		return argc >= 2 && !strcmp(argv[1], "help") ? 0 : 2;
	}
	/* A name, or a path to a socket. */
	if (strchr(argv[1], '/'))
		snprintf(sock, sizeof(sock), "%s", argv[1]);
	else if (!api_valid_name(argv[1]) || api_sock_path(argv[1], sock, sizeof(sock), false))
		return 2;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[2], cmds[i].cmd))
			continue;
		if (argc != 3 + cmds[i].nargs) {
			fputs(ctl_usage, stderr);
			return 2;
		}
		if (cmds[i].path && cmds[i].nargs == 2)
			body = snapshot_body(cmds[i].path, argv[3], argv[4]);
		if (request(sock, cmds[i].method, cmds[i].path ? cmds[i].path : argv[3],
			    body		 ? body
			    : cmds[i].nargs == 2 ? argv[4]
						 : cmds[i].body,
			    &r, false)) {
			free(body);
			return 3;
		}
		free(body);
		status = show(&r);
		free(r.body);
		return status;
	}
	fprintf(stderr, "microvm ctl: unknown command '%s'\n%s", argv[2], ctl_usage);
	return 2;
}
