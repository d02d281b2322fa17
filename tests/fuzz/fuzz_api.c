/*
 * libFuzzer target: the control API's request parser and dispatcher. The input is what
 * clients send: its first byte bounds the chunks the bytes arrive in (0: all at once), its
 * second seeds their sizes; the rest is fed to http_msg_feed, and each whole request is
 * answered by api_handle on the default arm64 machine with faked monitor operations (a
 * start takes the machine, pause and resume succeed, a snapshot load checks the overrides
 * network_overrides became and is refused). A refused request ends its
 * "connection": the rest of its chunk is dropped and parsing starts afresh, as the server
 * does. Checked: every reply is 200 with a JSON object, 204 with no body or 400 with a
 * fault_message; the state follows the faked monitor; before a start the machine the
 * accepted requests describe still loads (each PUT was checked, a refused one undone).
 *
 * Each input runs in a private temporary directory holding a kernel and two disk images, so
 * that relative paths reach those files and nothing else (libFuzzer's own files stay where
 * they would be; a crash's input too, -artifact_prefix being set to the starting directory).
 * MICROVM_FUZZ_SEEDS=DIR writes a corpus (Firecracker's getting-started requests, pause and resume,
 * malformed requests) into DIR and exits.
 */
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/http.h"
#include "arch.h"
#include "machine.h"
#include "virtio/net_frame.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { REQUESTS_MAX = 64 };

/* ---- the monitor, faked ---- */

struct fake {
	struct machine *m; /* what a start took, freed at the end of the input */
	unsigned starts, pauses, resumes, stops;
};

static int fake_start(void *opaque, struct machine *m)
{
	struct fake *f = opaque;

	if (f->m)
		abort(); /* one start per VM */
	f->m = m;
	f->starts++;
	return 0;
}

static int fake_pause(void *opaque)
{
	((struct fake *)opaque)->pauses++;
	return 0;
}

static int fake_resume(void *opaque)
{
	((struct fake *)opaque)->resumes++;
	return 0;
}

static void fake_stop(void *opaque)
{
	((struct fake *)opaque)->stops++;
}

/*
 * PUT /snapshot/load: what network_overrides became must be "ID.tap=TAP" or "ID.mac=MAC", an
 * id as the API's, a printable TAP name and a unicast MAC address; then the load is refused
 * (there is no snapshot), as a damaged one would be.
 */
static int fake_load(void *opaque, const char *state, const char *mem, bool resume,
		     const struct machine_override *ov, size_t nov, const struct machine **m)
{
	uint8_t mac[6];

	(void)opaque, (void)state, (void)mem, (void)resume, (void)m;
	if (nov > 32)
		abort();
	for (size_t i = 0; i < nov; i++) {
		const char *dot = strchr(ov[i].arg, '.'), *eq = dot ? strchr(dot, '=') : NULL;

		if (!dot || !eq || dot == ov[i].arg || dot - ov[i].arg > 64 ||
		    strcmp(ov[i].origin, "PUT /snapshot/load"))
			abort();
		for (const char *p = eq; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		if (!strncmp(dot, ".tap=", 5)
			    ? strlen(eq + 1) > 64
			    : strncmp(dot, ".mac=", 5) || net_parse_mac(eq + 1, mac))
			abort();
	}
	return -1;
}

/* The running balloon: some values refused, some statistics sent (derived from the value). */
static int fake_balloon(void *opaque, enum api_balloon_op op, uint32_t value,
			struct balloon_info *info)
{
	(void)opaque;
	memset(info, 0, sizeof(*info));
	info->amount_mib = op == API_BALLOON_TARGET ? value : 0;
	info->stats_interval_s = op == API_BALLOON_INTERVAL ? value : 1;
	info->stats_seen = value & 0x3ff;
	return value % 3 ? 0 : -EINVAL;
}

static const struct api_ops ops = {fake_start,		fake_pause, fake_resume, fake_stop,
				   NULL /* snapshot */, fake_load,  fake_balloon};

/* ---- the private directory ---- */

static char dir[] = "/tmp/fuzz_api-XXXXXX";
static int home_fd = -1, dir_fd = -1; /* where libFuzzer works (its corpus), and dir */
static const char *const files[] = {"vmlinux", "rootfs.ext4", "data.img"};

static void remove_dir(void)
{
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char p[64];

		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void make_file(const char *name, size_t len)
{
	static const char zero[4096];
	int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0 || len > sizeof(zero) || write(fd, zero, len) != (ssize_t)len)
		abort();
	close(fd);
}

/* ---- seeds ---- */

/* Requests as clients send them: the request line, then the JSON body (or NULL). */
static const char *const getting_started[][2] = {
	{"PUT /boot-source", "{\"kernel_image_path\": \"vmlinux\", \"boot_args\": "
			     "\"console=ttyS0 reboot=k panic=1 pci=off\"}"},
	{"PUT /drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": \"rootfs.ext4\", "
			       "\"is_root_device\": true, \"is_read_only\": false}"},
	{"PUT /machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 1024}"},
	{"PUT /network-interfaces/eth0", "{\"iface_id\": \"eth0\", \"guest_mac\": "
					 "\"AA:FC:00:00:00:01\", \"host_dev_name\": \"tap0\"}"},
	{"PUT /actions", "{\"action_type\": \"InstanceStart\"}"},
	{"GET /", NULL},
	{"PATCH /vm", "{\"state\": \"Paused\"}"},
	{"GET /machine", NULL},
	{"PATCH /vm", "{\"state\": \"Resumed\"}"},
	{"GET /vm/config", NULL},
	{"PUT /actions", "{\"action_type\": \"Stop\"}"},
};

static const char *const others[][2] = {
	{"PUT /drives/data", "{\"drive_id\": \"data\", \"path_on_host\": \"data.img\", "
			     "\"is_root_device\": false, \"is_read_only\": true, \"transport\": "
			     "\"pci\", \"io_engine\": \"Sync\", \"partuuid\": null}"},
	{"PATCH /machine-config", "{\"mem_size_mib\": 256, \"smt\": false}"},
	{"PUT /machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"cpu_template\": "
				"\"T2\", \"huge_pages\": \"2M\", \"x\": 1}"},
	{"PUT /network-interfaces/n1", "{\"iface_id\": \"n1\", \"host_dev_name\": \"tap1\", "
				       "\"rx_rate_limiter\": {}, \"vhost\": true}"},
	{"PUT /drives/uart0", "{\"drive_id\": \"uart0\", \"path_on_host\": \"data.img\", "
			      "\"is_root_device\": false, \"rate_limiter\": null}"},
	{"PUT /boot-source", "{\"kernel_image_path\": \"vmlinux\", \"initrd_path\": 1}"},
	{"PUT /actions", "{\"action_type\": }"},
	{"PUT /snapshot/create", "{}"},
	{"PUT /snapshot/load",
	 "{\"snapshot_path\": \"vm.state\", \"mem_backend\": {\"backend_type\": \"File\", "
	 "\"backend_path\": \"vm.mem\"}, \"resume_vm\": true, \"network_overrides\": "
	 "[{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap1\", \"guest_mac\": "
	 "\"06:00:AC:10:00:02\"}, {\"iface_id\": \"eth1\", \"guest_mac\": "
	 "\"02:00:00:00:00:01\"}]}"},
	{"PUT /snapshot/load",
	 "{\"snapshot_path\": \"s\", \"mem_file_path\": \"m\", \"network_overrides\": "
	 "[{\"iface_id\": \"eth1\", \"guest_mac\": \"02:00:00:00:00:0g\"}]}"},
	{"PUT /vsock", "{\"vsock_id\": \"vsock0\", \"guest_cid\": 3, \"uds_path\": \"v.sock\"}"},
	{"PUT /vsock", "{\"guest_cid\": 4294967295, \"uds_path\": \"\", \"x\": null}"},
	{"DELETE /drives/rootfs", NULL},
	/* Malformed: as they come, whole. */
	{"PUT /machine-config HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", ""},
	{"PUT /drives/d HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"drive_id\": "
	 "\"d\r\n1\r\n\"\r\n0\r\n\r\n",
	 ""},
	{"GET /vm/config?x=1#y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", ""},
	{"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", ""},
	{"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n", ""},
};

/* A request's text: a request line alone gets HTTP/1.1 and a body's length. */
static void put_request(FILE *f, const char *const r[2])
{
	if (r[1] && !*r[1]) {
		fputs(r[0], f);
		return;
	}
	fprintf(f, "%s HTTP/1.1\r\nHost: localhost\r\n", r[0]);
	if (r[1])
		fprintf(f, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			strlen(r[1]), r[1]);
	else
		fputs("\r\n", f);
}

static void write_seed(const char *seeds, unsigned n, uint8_t max, uint8_t seed,
		       const char *const (*reqs)[2], size_t nreqs)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed-%02u", seeds, n);
	f = fopen(path, "w");
	if (!f)
		abort();
	fputc(max, f);
	fputc(seed, f);
	for (size_t i = 0; i < nreqs; i++)
		put_request(f, reqs[i]);
	fclose(f);
}

static void write_seeds(const char *seeds)
{
	size_t ng = sizeof(getting_started) / sizeof(getting_started[0]);
	size_t no = sizeof(others) / sizeof(others[0]);
	unsigned n = 0;

	write_seed(seeds, n++, 0, 0, getting_started, ng);	 /* all at once */
	write_seed(seeds, n++, 7, 1, getting_started, ng);	 /* in small pieces */
	write_seed(seeds, n++, 200, 3, getting_started, ng - 6); /* up to the start */
	write_seed(seeds, n++, 0, 0, others, no);
	for (size_t i = 0; i < no; i++)
		write_seed(seeds, n++, (uint8_t)(i * 37), (uint8_t)i, &others[i], 1);
	for (size_t i = 0; i < ng; i++) {
		const char *const pair[2][2] = {{getting_started[i][0], getting_started[i][1]},
						{others[i % no][0], others[i % no][1]}};

		write_seed(seeds, n++, 0, 0, pair, 2);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char prefix[PATH_MAX + 32] = "-artifact_prefix=";
	bool has_prefix = false;
	char **args;

	if (getenv("MICROVM_FUZZ_SEEDS")) {
		write_seeds(getenv("MICROVM_FUZZ_SEEDS"));
		exit(0);
	}
	home_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (home_fd < 0 || !mkdtemp(dir) || (dir_fd = open(dir, O_RDONLY | O_DIRECTORY)) < 0 ||
	    fchdir(dir_fd) < 0)
		abort();
	atexit(remove_dir);
	make_file("vmlinux", 4096);
	make_file("rootfs.ext4", 4096);
	make_file("data.img", 1024);
	if (fchdir(home_fd) < 0)
		abort();
	/* A crash's input goes where it would without the private directory. */
	for (int i = 1; i < *argc; i++)
		has_prefix |= !strncmp((*argv)[i], prefix, strlen(prefix));
	if (has_prefix || !getcwd(prefix + strlen(prefix), PATH_MAX))
		return 0;
	strcat(prefix, "/");
	args = calloc((size_t)*argc + 2, sizeof(*args));
	if (!args)
		abort();
	memcpy(args, *argv, (size_t)*argc * sizeof(*args));
	args[(*argc)++] = prefix;
	*argv = args;
	return 0;
}

/* ---- one input ---- */

/* A reply is 200 with a JSON object, 204 with no body, or 400 with a fault_message. */
static void check_reply(const struct http_reply *r, bool keep_alive)
{
	json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
	size_t len;
	char *out;

	switch (r->status) {
	case 200:
		if (!json_is_object(j))
			abort();
		break;
	case 204:
		if (r->body)
			abort();
		break;
	case 400:
		if (!json_is_string(json_object_get(j, "fault_message")))
			abort();
		break;
	default:
		abort();
	}
	json_decref(j);
	out = http_format_reply(r, keep_alive, &len);
	if (!out || len < 17 || memcmp(out, "HTTP/1.1 ", 9))
		abort();
	free(out);
}

static void answer(struct api *a, struct fake *f, struct http_msg *m)
{
	struct http_reply r = {.status = 500};

	if (m->url_len > HTTP_URL_MAX || m->body_len > HTTP_BODY_MAX ||
	    strlen(m->url) != m->url_len || (m->body_len && !m->body))
		abort();
	api_handle(a, http_msg_method(m), m->url, m->body, m->body_len, &r);
	check_reply(&r, m->keep_alive);
	free(r.body);
	/* The API's state is the monitor's. */
	if ((a->state == API_NOT_STARTED) != !f->m || a->running != f->m ||
	    (a->state == API_PAUSED && !f->pauses) || f->starts > 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fake f = {0};
	struct http_msg m;
	struct machine described;
	struct api a;
	unsigned requests = 0;
	uint32_t rng;
	size_t pos = 2, max;

	if (size < 2 || fchdir(dir_fd) < 0)
		return 0;
	max = data[0];
	rng = data[1];
	if (api_init(&a, "fuzz", "default machine", arch_arm64.default_machine, NULL, 0, &ops, &f))
		abort();
	http_msg_init(&m);
	while (pos < size && requests < REQUESTS_MAX) {
		size_t len = size - pos, off = 0;

		if (max) {
			rng = rng * 1103515245u + 12345u;
			if (len > 1 + (rng >> 16) % max)
				len = 1 + (rng >> 16) % max;
		}
		while (off < len && requests < REQUESTS_MAX) {
			size_t n = http_msg_feed(&m, (const char *)data + pos + off, len - off);
			bool keep;

			if (n > len - off)
				abort();
			off += n;
			if (m.error) {
				/* Answered with the error; the connection closes, a new one starts.
				 */
				struct http_reply r = {.status = m.error};

				if (m.error != 400 && m.error != 413 && m.error != 414 &&
				    m.error != 431 && m.error != 503)
					abort();
				free(http_format_reply(&r, false, &n));
				http_msg_free(&m);
				http_msg_init(&m);
				requests++;
				break;
			}
			if (!m.complete) {
				if (!n)
					break;
				continue;
			}
			answer(&a, &f, &m);
			requests++;
			keep = m.keep_alive;
			http_msg_free(&m);
			http_msg_init(&m);
			if (!keep)
				break; /* the server closes it: what else came is dropped */
		}
		pos += len;
	}
	http_msg_free(&m);
	/* What the accepted requests describe loads (each was checked; refused ones undone). */
	if (a.state == API_NOT_STARTED) {
		if (api_machine(&a, &described))
			abort();
		machine_free(&described);
	}
	api_free(&a);
	if (f.m) {
		machine_free(f.m);
		free(f.m);
	}
	if (fchdir(home_fd) < 0)
		abort();
	return 0;
}
