/* api: Firecracker's resources, parsed with jansson, applied to the machine description. */
#include "api/api.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "arch.h"
#include "device.h"
#include "layout.h"
#include "log.h"
#include "machine.h"
#include "timeline.h"
#include "virtio/net_frame.h"

#ifndef MICROVM_VERSION
#error "MICROVM_VERSION comes from the VERSION file (see the Makefile)"
#endif

enum res_kind { RES_MACHINE, RES_BOOT, RES_DRIVE, RES_NIC, RES_ENTROPY, RES_VSOCK, RES_BALLOON };

enum { RES_KEYS_MAX = 12, ID_MAX = 64, NET_OVERRIDES_MAX = 16 };

/* One PUT resource: the overrides it makes, and what the start needs of it. */
struct api_res {
	int kind;
	char *id;     /* drive_id, iface_id; NULL for the singletons */
	char *origin; /* "PUT /drives/rootfs": where its messages point */
	struct {
		char *arg;	   /* "SECTION.KEY=VALUE" */
		const char *field; /* the JSON field it came from */
	} kv[RES_KEYS_MAX];
	unsigned n;
	bool root, ro; /* a drive: the root device, read-only */
	char *partuuid;
	char *boot_args;	  /* boot-source: the command line, when given */
	long long vcpus, mem_mib; /* machine-config, -1 when not given */
};

/* ---- replies ---- */

static void reply_json(struct http_reply *r, int status, json_t *body)
{
	r->status = status;
	r->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!r->body) {
		/* A value that is not UTF-8 (a path in an INI file), or no memory: still an
		 * answer, and never a 200 without its body. */
		r->status = 500;
		r->body = strdup("{\"fault_message\": \"the reply cannot be written as JSON (a "
				 "value that is not UTF-8?)\"}");
	}
}

/* Make s UTF-8: each byte that does not begin a whole character (a client's raw bytes, a
 * character cut short at the end of a message) becomes '?'. */
static void utf8_fix(char *s)
{
	size_t i = 0;

	while (s[i]) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80		? 1
			   : (c & 0xe0) == 0xc0 ? 2
			   : (c & 0xf0) == 0xe0 ? 3
			   : (c & 0xf8) == 0xf0 ? 4
						: 0;

		for (size_t k = 1; n && k < n; k++)
			if (((unsigned char)s[i + k] & 0xc0) != 0x80)
				n = 0;
		if (!n) {
			s[i++] = '?';
			continue;
		}
		i += n;
	}
}

static void fault(struct http_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fault(struct http_reply *r, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	json_t *j;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	utf8_fix(msg);
	j = json_pack("{s:s}", "fault_message", msg);
	if (!j) {
		/* Still not UTF-8 to jansson (an overlong form, a surrogate): those bytes go. */
		for (char *p = msg; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		j = json_pack("{s:s}", "fault_message", msg);
	}
	reply_json(r, 400, j);
}

/* ---- capturing the machine description's messages ---- */

struct capture {
	FILE *f;
	char *text;
	size_t len;
};

static void capture_begin(struct capture *c)
{
	*c = (struct capture){0};
	c->f = open_memstream(&c->text, &c->len);
	log_capture(c->f);
}

/* The captured messages, trimmed; freed by the caller. */
static char *capture_end(struct capture *c)
{
	log_capture(NULL);
	if (c->f)
		fclose(c->f);
	while (c->text && c->len && c->text[c->len - 1] == '\n')
		c->text[--c->len] = '\0';
	return c->text;
}

/* ---- resources to overrides ---- */

static void res_clear(struct api_res *res)
{
	for (unsigned i = 0; i < res->n; i++)
		free(res->kv[i].arg);
	free(res->id);
	free(res->origin);
	free(res->partuuid);
	free(res->boot_args);
	memset(res, 0, sizeof(*res));
}

static int res_set(struct api_res *res, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int res_set(struct api_res *res, const char *field, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (res->n >= RES_KEYS_MAX)
		return -1;
	va_start(ap, fmt);
	n = vasprintf(&res->kv[res->n].arg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	res->kv[res->n++].field = field;
	return 0;
}

static struct api_res *find_res(struct api *a, int kind, const char *id)
{
	for (size_t i = 0; i < a->nres; i++)
		if (a->res[i].kind == kind && (!id || (a->res[i].id && !strcmp(a->res[i].id, id))))
			return &a->res[i];
	return NULL;
}

/* The command line the guest gets: boot_args (or the default's), then the root device's. */
static char *cmdline(struct api *a)
{
	struct api_res *boot = find_res(a, RES_BOOT, NULL);
	const char *base = boot && boot->boot_args ? boot->boot_args : a->base_cmdline;
	char *s = NULL;

	for (size_t i = 0; i < a->nres; i++) {
		struct api_res *d = &a->res[i];

		if (d->kind != RES_DRIVE || !d->root)
			continue;
		if (d->partuuid)
			return asprintf(&s, "%s%sroot=PARTUUID=%s %s", base, *base ? " " : "",
					d->partuuid, d->ro ? "ro" : "rw") < 0
				       ? NULL
				       : s;
		return asprintf(&s, "%s%sroot=/dev/vda %s", base, *base ? " " : "",
				d->ro ? "ro" : "rw") < 0
			       ? NULL
			       : s;
	}
	return strdup(base);
}

/*
 * Load the machine the requests so far describe: the default, then machine-config and
 * boot-source, the root drive first (it becomes /dev/vda), the other drives, the NICs.
 */
static int load(struct api *a, struct machine *m, bool run)
{
	struct machine_override *ov = calloc(a->nres * RES_KEYS_MAX + a->nbase_ov + 1, sizeof(*ov));
	struct machine_src src = {.path = a->basename, .text = a->base, .ov = ov};
	static const int order[] = {RES_MACHINE, RES_BOOT,    RES_DRIVE, RES_DRIVE,
				    RES_NIC,	 RES_ENTROPY, RES_VSOCK, RES_BALLOON};
	char *cl = cmdline(a), *clarg = NULL;
	int err = -ENOMEM;

	memset(m, 0, sizeof(*m)); /* machine_free is safe on it whatever happens below */
	if (!ov || !cl || asprintf(&clarg, "boot.cmdline=%s", cl) < 0) {
		clarg = NULL;
		goto out;
	}
	for (size_t i = 0; i < a->nbase_ov; i++)
		ov[src.nov++] = a->base_ov[i];
	ov[src.nov++] = (struct machine_override){
		.arg = clarg, .origin = "PUT /boot-source", .field = "boot_args"};
	for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++)
		for (size_t i = 0; i < a->nres; i++) {
			struct api_res *res = &a->res[i];

			if (res->kind != order[o] ||
			    (order[o] == RES_DRIVE && res->root != (o == 2)))
				continue;
			for (unsigned k = 0; k < res->n; k++)
				ov[src.nov++] =
					(struct machine_override){.arg = res->kv[k].arg,
								  .origin = res->origin,
								  .field = res->kv[k].field};
		}
	err = machine_load_src(m, &src, run);
out:
	free(ov);
	free(cl);
	free(clarg);
	return err;
}

int api_machine(struct api *a, struct machine *m)
{
	return load(a, m, false);
}

/* Does the machine the requests describe load? 0, or a 400 with its messages in r. */
static int check(struct api *a, struct http_reply *r)
{
	struct capture cap;
	struct machine m;
	char *msg;
	int err;

	capture_begin(&cap);
	err = load(a, &m, false);
	machine_free(&m);
	msg = capture_end(&cap);
	if (err)
		fault(r, "%s", msg && *msg ? msg : strerror(-err));
	free(msg);
	return err;
}

/* ---- JSON fields ---- */

/* A request's body: an object, every key of it known (refused ones named), or a 400. */
struct body {
	json_t *obj;
	struct http_reply *r;
	bool failed;
};

static json_t *parse_body(const char *body, size_t len, struct http_reply *r)
{
	json_error_t e;
	json_t *obj;

	if (!body || !len) {
		fault(r, "the request needs a JSON body");
		return NULL;
	}
	obj = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	if (!obj) {
		fault(r, "malformed JSON at line %d, column %d: %s", e.line, e.column, e.text);
		return NULL;
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		fault(r, "the body must be a JSON object");
		return NULL;
	}
	return obj;
}

static void bad(struct body *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(struct body *b, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (b->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fault(b->r, "%s", msg);
	b->failed = true;
}

/* Every key of the body must be one of known (NULL-ended), or refused by name. */
static void only(struct body *b, const char *const *known, const char *const *refused)
{
	const char *key;
	json_t *v;

	json_object_foreach(b->obj, key, v)
	{
		bool ok = false;

		for (size_t i = 0; known[i] && !ok; i++)
			ok = !strcmp(key, known[i]);
		for (size_t i = 0; refused && refused[i] && !ok; i += 2)
			if (!strcmp(key, refused[i])) {
				/* A refused field is accepted only as null (what a client sends
				 * when it does not use the feature). */
				if (json_is_null(v))
					ok = true;
				else
					return bad(b, "%s: not supported by microvm (%s)", key,
						   refused[i + 1]);
			}
		if (!ok)
			return bad(b, "%s: unknown field", key);
	}
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if (iscntrl((unsigned char)*s))
			return false;
	return true;
}

/* A string field: NULL when absent (or null); a 400 when of another type or required. */
static const char *get_str(struct body *b, const char *key, bool required)
{
	json_t *v = json_object_get(b->obj, key);

	if (!v || json_is_null(v)) {
		if (required)
			bad(b, "%s: required", key);
		return NULL;
	}
	if (!json_is_string(v)) {
		bad(b, "%s: must be a string", key);
		return NULL;
	}
	if (!printable(json_string_value(v)) ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		bad(b, "%s: control characters are not allowed", key);
		return NULL;
	}
	return json_string_value(v);
}

/* A boolean field: -1 when absent. */
static int get_bool(struct body *b, const char *key, bool required)
{
	json_t *v = json_object_get(b->obj, key);

	if (!v || json_is_null(v)) {
		if (required)
			bad(b, "%s: required", key);
		return -1;
	}
	if (!json_is_boolean(v)) {
		bad(b, "%s: must be true or false", key);
		return -1;
	}
	return json_is_true(v);
}

/* A non-negative integer field: -1 when absent. */
static long long get_int(struct body *b, const char *key, bool required)
{
	json_t *v = json_object_get(b->obj, key);

	if (!v || json_is_null(v)) {
		if (required)
			bad(b, "%s: required", key);
		return -1;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		bad(b, "%s: must be a non-negative integer", key);
		return -1;
	}
	return json_integer_value(v);
}

/* A string field that must be one of names (NULL-ended): its index, -1 when absent. */
static int get_enum(struct body *b, const char *key, const char *const *names)
{
	const char *s = get_str(b, key, false);

	if (!s)
		return -1;
	for (int i = 0; names[i]; i++)
		if (!strcmp(s, names[i]))
			return i;
	bad(b, "%s: '%s' is not one of the values microvm supports", key, s);
	return -1;
}

/* An id in the path: a section name of the machine description, of at most ID_MAX bytes. */
static bool valid_id(const char *id)
{
	return strlen(id) <= ID_MAX && cfg_valid_name(id);
}

/* ---- pre-boot resources ---- */

/* Replace (or add) the resource of kind and id with res; keep the old one to roll back. */
static struct api_res *res_put(struct api *a, struct api_res *res, struct api_res *old)
{
	struct api_res *cur = find_res(a, res->kind, res->id);

	memset(old, 0, sizeof(*old));
	if (cur) {
		*old = *cur;
		*cur = *res;
		return cur;
	}
	struct api_res *v = realloc(a->res, (a->nres + 1) * sizeof(*v));

	if (!v)
		return NULL;
	a->res = v;
	a->res[a->nres] = *res;
	return &a->res[a->nres++];
}

/* Apply res, check the machine still loads; on a 400, the previous state comes back. */
static void apply(struct api *a, struct api_res *res, struct http_reply *r)
{
	struct api_res old, *cur = res_put(a, res, &old);

	if (!cur) {
		res_clear(res);
		fault(r, "out of memory");
		return;
	}
	if (check(a, r)) {
		res_clear(cur);
		if (old.origin) /* it replaced one: that one comes back */
			*cur = old;
		else
			memmove(cur, cur + 1, (size_t)(a->res + --a->nres - cur) * sizeof(*cur));
		return;
	}
	res_clear(&old);
	r->status = 204;
}

static int origin(struct api_res *res, const char *method, const char *url)
{
	return asprintf(&res->origin, "%s %s", method, url) < 0 ? -1 : 0;
}

static void put_machine_config(struct api *a, struct body *b, const char *method, const char *url)
{
	static const char *const known[] = {"vcpu_count", "mem_size_mib", NULL};
	static const char *const refused[] = {
		"smt",
		"the guest sees no SMT siblings; only false",
		"track_dirty_pages",
		"no dirty page tracking yet; only false",
		"cpu_template",
		"the vCPUs are the host's; only \"None\"",
		"huge_pages",
		"[memory] hugepages are transparent huge pages; only \"None\"",
		NULL,
	};
	struct api_res res = {.kind = RES_MACHINE, .vcpus = -1, .mem_mib = -1},
		       *prev = find_res(a, RES_MACHINE, NULL);
	bool patch = !strcmp(method, "PATCH");
	long long vcpus, mib;
	json_t *v;

	/* The refused ones are accepted at the value that asks for nothing. */
	if ((v = json_object_get(b->obj, "smt")) && json_is_false(v))
		json_object_del(b->obj, "smt");
	if ((v = json_object_get(b->obj, "track_dirty_pages")) && json_is_false(v))
		json_object_del(b->obj, "track_dirty_pages");
	if ((v = json_object_get(b->obj, "cpu_template")) && json_is_string(v) &&
	    !strcmp(json_string_value(v), "None"))
		json_object_del(b->obj, "cpu_template");
	if ((v = json_object_get(b->obj, "huge_pages")) && json_is_string(v) &&
	    !strcmp(json_string_value(v), "None"))
		json_object_del(b->obj, "huge_pages");
	only(b, known, refused);
	vcpus = get_int(b, "vcpu_count", !patch);
	mib = get_int(b, "mem_size_mib", !patch);
	if (b->failed)
		return;
	if (patch && vcpus < 0 && mib < 0)
		return bad(b, "nothing to change");
	/* A PATCH keeps what an earlier request set. */
	res.vcpus = vcpus >= 0 ? vcpus : prev ? prev->vcpus : -1;
	res.mem_mib = mib >= 0 ? mib : prev ? prev->mem_mib : -1;
	if (origin(&res, method, url) ||
	    (res.vcpus >= 0 && res_set(&res, "vcpu_count", "machine.vcpus=%lld", res.vcpus)) ||
	    (res.mem_mib >= 0 && res_set(&res, "mem_size_mib", "memory.size=%lldM", res.mem_mib))) {
		res_clear(&res);
		return bad(b, "out of memory");
	}
	apply(a, &res, b->r);
}

static void put_boot_source(struct api *a, struct body *b, const char *method, const char *url)
{
	static const char *const known[] = {"kernel_image_path", "initrd_path", "boot_args", NULL};
	struct api_res res = {.kind = RES_BOOT};
	const char *kernel, *initrd, *args;

	only(b, known, NULL);
	kernel = get_str(b, "kernel_image_path", true);
	initrd = get_str(b, "initrd_path", false);
	args = get_str(b, "boot_args", false);
	if (b->failed)
		return;
	if (origin(&res, method, url) ||
	    res_set(&res, "kernel_image_path", "boot.kernel=%s", kernel) ||
	    (initrd && res_set(&res, "initrd_path", "boot.initrd=%s", initrd)) ||
	    (args && !(res.boot_args = strdup(args)))) {
		res_clear(&res);
		return bad(b, "out of memory");
	}
	apply(a, &res, b->r);
}

/* A drive or NIC's id: valid, the same as the body's, not another part of the machine. */
static bool device_id(struct api *a, struct body *b, int kind, const char *id, const char *field)
{
	const char *body_id = get_str(b, field, true);

	if (b->failed)
		return false;
	if (strcmp(body_id, id)) {
		bad(b, "%s: '%s' is not the id in the path ('%s')", field, body_id, id);
		return false;
	}
	if (!valid_id(id)) {
		bad(b, "%s: '%s' must be 1 to %d letters, digits, '-' or '_'", field, id, ID_MAX);
		return false;
	}
	for (size_t i = 0; i < a->nreserved; i++)
		if (!strcmp(a->reserved[i], id)) {
			bad(b, "%s: '%s' names a part of the machine already", field, id);
			return false;
		}
	for (size_t i = 0; i < a->nres; i++)
		if (a->res[i].id && a->res[i].kind != kind && !strcmp(a->res[i].id, id)) {
			bad(b, "%s: '%s' is the id of %s already", field, id,
			    a->res[i].kind == RES_DRIVE ? "a drive"
			    : a->res[i].kind == RES_NIC ? "a network interface"
							: "the entropy device");
			return false;
		}
	return true;
}

static const char *const transports[] = {"mmio", "pci", NULL};

static void put_drive(struct api *a, struct body *b, const char *id, const char *method,
		      const char *url)
{
	static const char *const known[] = {"drive_id",	    "path_on_host", "is_root_device",
					    "is_read_only", "cache_type",   "io_engine",
					    "partuuid",	    "transport",    NULL};
	static const char *const refused[] = {"rate_limiter", "no rate limiting yet", "socket",
					      "no vhost-user back-ends", NULL};
	static const char *const caches[] = {"Unsafe", "Writeback", NULL};
	static const char *const engines[] = {"Sync", "Async", NULL};
	struct api_res res = {.kind = RES_DRIVE};
	const char *path, *partuuid;
	int root, ro, engine, transport;

	only(b, known, refused);
	if (!device_id(a, b, RES_DRIVE, id, "drive_id"))
		return;
	path = get_str(b, "path_on_host", true);
	root = get_bool(b, "is_root_device", true);
	ro = get_bool(b, "is_read_only", false);
	partuuid = get_str(b, "partuuid", false);
	get_enum(b, "cache_type", caches); /* both: flushes are honoured (writeback) */
	engine = get_enum(b, "io_engine", engines);
	transport = get_enum(b, "transport", transports);
	if (b->failed)
		return;
	for (size_t i = 0; root > 0 && i < a->nres; i++)
		if (a->res[i].kind == RES_DRIVE && a->res[i].root && strcmp(a->res[i].id, id))
			return bad(b, "is_root_device: drive '%s' is the root device already",
				   a->res[i].id);
	res.root = root > 0;
	res.ro = ro > 0;
	if (origin(&res, method, url) || !(res.id = strdup(id)) ||
	    (partuuid && !(res.partuuid = strdup(partuuid))) ||
	    res_set(&res, "drive_id", "%s.type=virtio-blk", id) ||
	    res_set(&res, "path_on_host", "%s.path=%s", id, path) ||
	    res_set(&res, "is_read_only", "%s.readonly=%s", id, ro > 0 ? "on" : "off") ||
	    (engine >= 0 &&
	     res_set(&res, "io_engine", "%s.engine=%s", id, engine ? "io_uring" : "sync")) ||
	    (transport >= 0 &&
	     res_set(&res, "transport", "%s.transport=%s", id, transports[transport]))) {
		res_clear(&res);
		return bad(b, "out of memory");
	}
	apply(a, &res, b->r);
}

static void put_nic(struct api *a, struct body *b, const char *id, const char *method,
		    const char *url)
{
	static const char *const known[] = {"iface_id",	 "host_dev_name", "guest_mac",
					    "transport", "vhost",	  NULL};
	static const char *const refused[] = {"rx_rate_limiter", "no rate limiting yet",
					      "tx_rate_limiter", "no rate limiting yet", NULL};
	struct api_res res = {.kind = RES_NIC};
	const char *tap, *mac;
	int transport, vhost;

	only(b, known, refused);
	if (!device_id(a, b, RES_NIC, id, "iface_id"))
		return;
	tap = get_str(b, "host_dev_name", true);
	mac = get_str(b, "guest_mac", false);
	transport = get_enum(b, "transport", transports);
	vhost = get_bool(b, "vhost", false);
	if (b->failed)
		return;
	if (origin(&res, method, url) || !(res.id = strdup(id)) ||
	    res_set(&res, "iface_id", "%s.type=virtio-net", id) ||
	    res_set(&res, "host_dev_name", "%s.tap=%s", id, tap) ||
	    (mac && res_set(&res, "guest_mac", "%s.mac=%s", id, mac)) ||
	    (vhost >= 0 && res_set(&res, "vhost", "%s.vhost=%s", id, vhost ? "on" : "off")) ||
	    (transport >= 0 &&
	     res_set(&res, "transport", "%s.transport=%s", id, transports[transport]))) {
		res_clear(&res);
		return bad(b, "out of memory");
	}
	apply(a, &res, b->r);
}

/*
 * The object field key of b as a body of its own (its fields read with get_*, its failures
 * b's): false when absent or null, or not an object (a 400).
 */
static bool get_obj(struct body *b, const char *key, struct body *sub)
{
	json_t *v = json_object_get(b->obj, key);

	*sub = (struct body){.r = b->r, .failed = b->failed};
	if (!v || json_is_null(v))
		return false;
	if (!json_is_object(v)) {
		bad(b, "%s: must be an object", key);
		return false;
	}
	sub->obj = v;
	return true;
}

/*
 * The entropy device (section "entropy"). Firecracker's rate limiter is a token bucket of
 * bandwidth.size bytes refilled in refill_time ms: virtio-rng's rate_burst and rate_limit
 * (size * 1000 / refill_time bytes per second).
 */
static void put_entropy(struct api *a, struct body *b, const char *method, const char *url)
{
	static const char *const known[] = {"rate_limiter", NULL};
	static const char *const limiter_known[] = {"bandwidth", NULL};
	static const char *const limiter_refused[] = {
		"ops", "no limit on the number of requests: only on bytes", NULL};
	static const char *const bw_known[] = {"size", "refill_time", NULL};
	static const char *const bw_refused[] = {"one_time_burst", "no initial burst", NULL};
	struct api_res res = {.kind = RES_ENTROPY};
	struct body limiter, bw;
	long long size = -1, refill = -1;

	(void)a;
	only(b, known, NULL);
	if (get_obj(b, "rate_limiter", &limiter)) {
		only(&limiter, limiter_known, limiter_refused);
		if (get_obj(&limiter, "bandwidth", &bw)) {
			only(&bw, bw_known, bw_refused);
			size = get_int(&bw, "size", true);
			refill = get_int(&bw, "refill_time", true);
			if (!bw.failed && (!size || !refill))
				bad(&bw, "rate_limiter.bandwidth: size and refill_time must be "
					 "positive");
			if (!bw.failed && (size > (1ll << 40) || refill > 3600000))
				bad(&bw, "rate_limiter.bandwidth: size is at most 1 TiB and "
					 "refill_time an hour");
			limiter.failed |= bw.failed;
		}
		b->failed |= limiter.failed;
	}
	if (b->failed)
		return;
	if (origin(&res, method, url) || !(res.id = strdup("entropy")) ||
	    res_set(&res, "rate_limiter", "entropy.type=virtio-rng") ||
	    (size > 0 &&
	     (res_set(&res, "rate_limiter", "entropy.rate_limit=%lld", size * 1000 / refill ?: 1) ||
	      res_set(&res, "rate_limiter", "entropy.rate_burst=%lld", size)))) {
		res_clear(&res);
		return bad(b, "out of memory");
	}
	apply(a, &res, b->r);
}

/* PUT /balloon: the [balloon] section, Firecracker's fields and microvm's free_page_reporting. */
static void put_balloon(struct api *a, struct body *b, const char *method, const char *url)
{
	static const char *const known[] = {
		"amount_mib",	       "deflate_on_oom", "stats_polling_interval_s",
		"free_page_reporting", "transport",	 NULL};
	static const char *const refused[] = {"free_page_hinting",
					      "free-page hinting is not offered; "
					      "free_page_reporting is",
					      NULL};
	struct api_res res = {.kind = RES_BALLOON};
	long long mib, interval;
	int oom, reporting, transport;

	only(b, known, refused);
	mib = get_int(b, "amount_mib", true);
	oom = get_bool(b, "deflate_on_oom", true);
	interval = get_int(b, "stats_polling_interval_s", false);
	reporting = get_bool(b, "free_page_reporting", false);
	transport = get_enum(b, "transport", transports);
	if (b->failed)
		return;
	if (mib > UINT32_MAX || interval > UINT32_MAX)
		return bad(b, "%s: too large",
			   mib > UINT32_MAX ? "amount_mib" : "stats_polling_interval_s");
	if (origin(&res, method, url) ||
	    res_set(&res, "amount_mib", "balloon.type=virtio-balloon") ||
	    res_set(&res, "amount_mib", "balloon.amount_mib=%lld", mib) ||
	    res_set(&res, "deflate_on_oom", "balloon.deflate_on_oom=%s", oom ? "on" : "off") ||
	    (interval >= 0 && res_set(&res, "stats_polling_interval_s",
				      "balloon.stats_polling_interval_s=%lld", interval)) ||
	    (reporting >= 0 &&
	     res_set(&res, "free_page_reporting", "balloon.free_page_reporting=%s",
		     reporting ? "on" : "off")) ||
	    (transport >= 0 &&
	     res_set(&res, "transport", "balloon.transport=%s", transports[transport]))) {
		res_clear(&res);
		return bad(b, "out of memory");
	}
	apply(a, &res, b->r);
}

/*
 * PUT /vsock: the machine's socket device, section vsock0 (Firecracker has one; vsock_id, a
 * label there, is taken and not used).
 */
static void put_vsock(struct api *a, struct body *b, const char *method, const char *url)
{
	static const char *const known[] = {"guest_cid", "uds_path", "vsock_id", NULL};
	struct api_res res = {.kind = RES_VSOCK};
	const char *uds;
	long long cid;

	only(b, known, NULL);
	get_str(b, "vsock_id", false);
	cid = get_int(b, "guest_cid", true);
	uds = get_str(b, "uds_path", true);
	if (b->failed)
		return;
	if (origin(&res, method, url) || res_set(&res, "guest_cid", "vsock0.type=virtio-vsock") ||
	    res_set(&res, "guest_cid", "vsock0.cid=%lld", cid) ||
	    res_set(&res, "uds_path", "vsock0.uds_path=%s", uds)) {
		res_clear(&res);
		return bad(b, "out of memory");
	}
	apply(a, &res, b->r);
}

/* ---- the running balloon ---- */

/* Ask the running VM's balloon (op, value) and fill *info. 0, or the reply r was given. */
static int balloon_op(struct api *a, struct http_reply *r, enum api_balloon_op op, uint32_t value,
		      struct balloon_info *info)
{
	int err;

	if (a->state == API_NOT_STARTED || !a->ops.balloon) {
		fault(r, "the microVM is not running");
		return -1;
	}
	err = a->ops.balloon(a->opaque, op, value, info);
	if (err == -ENODEV)
		fault(r, "the microVM has no balloon");
	else if (err && op == API_BALLOON_TARGET)
		fault(r, "amount_mib: %u MiB is more than the guest's RAM", value);
	else if (err && op == API_BALLOON_INTERVAL)
		fault(r, "stats_polling_interval_s: statistics cannot be turned %s after boot",
		      value ? "on" : "off");
	else if (err)
		fault(r, "balloon: %s", strerror(-err));
	return err ? -1 : 0;
}

/* PATCH /balloon (amount_mib) or /balloon/statistics (stats_polling_interval_s). */
static void patch_balloon(struct api *a, struct body *b, bool statistics)
{
	const char *field = statistics ? "stats_polling_interval_s" : "amount_mib";
	const char *const known[] = {field, NULL};
	struct balloon_info info;
	long long v;

	only(b, known, NULL);
	v = get_int(b, field, true);
	if (b->failed)
		return;
	if (v > UINT32_MAX)
		return bad(b, "%s: too large", field);
	if (!balloon_op(a, b->r, statistics ? API_BALLOON_INTERVAL : API_BALLOON_TARGET,
			(uint32_t)v, &info))
		b->r->status = 204;
}

static json_t *balloon_json(const struct balloon_info *i)
{
	return json_pack("{s:I,s:b,s:I,s:b,s:I,s:I}", "amount_mib", (json_int_t)i->amount_mib,
			 "deflate_on_oom", i->deflate_on_oom, "stats_polling_interval_s",
			 (json_int_t)i->stats_interval_s, "free_page_reporting",
			 i->free_page_reporting, "actual_pages", (json_int_t)i->actual_pages,
			 "actual_mib", (json_int_t)(i->actual_pages >> 8));
}

/* Firecracker's names of the statistics tags 0..9 (virtio 1.2 5.5.6.3). */
static const char *const stat_names[BALLOON_STATS] = {
	"swap_in",	    "swap_out",	   "major_faults",
	"minor_faults",	    "free_memory", "total_memory",
	"available_memory", "disk_caches", "hugetlb_allocations",
	"hugetlb_failures",
};

static json_t *balloon_stats_json(const struct balloon_info *i)
{
	json_t *o = json_pack("{s:I,s:I,s:I,s:I}", "target_pages", (json_int_t)i->target_pages,
			      "actual_pages", (json_int_t)i->actual_pages, "target_mib",
			      (json_int_t)(i->target_pages >> 8), "actual_mib",
			      (json_int_t)(i->actual_pages >> 8));

	/* Only what the driver sent: Firecracker leaves the others out too. */
	for (unsigned t = 0; o && t < BALLOON_STATS; t++)
		if (i->stats_seen & (1u << t))
			json_object_set_new(o, stat_names[t],
					    json_integer((json_int_t)i->stats[t]));
	return o;
}

/* GET /balloon, /balloon/statistics: the running balloon's. */
static void get_balloon(struct api *a, struct http_reply *r, bool statistics)
{
	struct balloon_info info;

	if (balloon_op(a, r, API_BALLOON_GET, 0, &info))
		return;
	if (statistics && !info.stats_interval_s)
		return fault(r, "statistics are not enabled (stats_polling_interval_s)");
	reply_json(r, 200, statistics ? balloon_stats_json(&info) : balloon_json(&info));
}

/* ---- what is running, or would run ---- */

static json_t *machine_config_json(const struct machine *m)
{
	return json_pack("{s:I,s:I,s:b,s:b,s:s}", "vcpu_count", (json_int_t)m->vcpus,
			 "mem_size_mib", (json_int_t)(m->ram_size >> 20), "smt", 0,
			 "track_dirty_pages", 0, "huge_pages", "None");
}

static const char *transport_of(const struct cfg *c, const char *sec)
{
	const char *t = cfg_value(c, sec, "transport");

	return t ? t : "mmio";
}

/* GET /vm/config: the machine in Firecracker's shapes. */
/* An entropy device as PUT /entropy describes it: its bucket and the time it takes to fill. */
static json_t *entropy_json(const struct cfg *c, const char *sec)
{
	const char *rate_s = cfg_value(c, sec, "rate_limit"),
		   *burst_s = cfg_value(c, sec, "rate_burst");
	uint64_t rate = 0, burst = 0;

	if (!rate_s || parse_size(rate_s, &rate) || !rate)
		return json_object();
	if (!burst_s || parse_size(burst_s, &burst))
		burst = rate;
	return json_pack("{s:{s:{s:I,s:I}}}", "rate_limiter", "bandwidth", "size",
			 (json_int_t)burst, "refill_time", (json_int_t)(burst * 1000 / rate));
}

static json_t *vm_config_json(const struct machine *m)
{
	const struct cfg *c = &m->cfg;
	json_t *drives = json_array(), *nics = json_array(), *boot, *entropy = NULL;
	bool root = m->cmdline && strstr(m->cmdline, "root=") != NULL;

	for (size_t i = 0; i < m->ndevices; i++) {
		const struct device *d = &m->devices[i];

		if (!strcmp(d->ops->type, "virtio-blk")) {
			const char *engine = cfg_value(c, d->name, "engine");
			/* The API puts the root drive first (/dev/vda); it says root= for it. */

			json_array_append_new(
				drives,
				json_pack("{s:s,s:s?,s:b,s:b,s:s,s:s,s:s}", "drive_id", d->name,
					  "path_on_host", cfg_value(c, d->name, "path"),
					  "is_root_device", root, "is_read_only",
					  cfg_value_true(c, d->name, "readonly"), "cache_type",
					  "Writeback", "io_engine",
					  engine && !strcmp(engine, "sync") ? "Sync" : "Async",
					  "transport", transport_of(c, d->name)));
			root = false;
		} else if (!strcmp(d->ops->type, "virtio-net")) {
			json_array_append_new(
				nics, json_pack("{s:s,s:s?,s:s?,s:s}", "iface_id", d->name,
						"host_dev_name", cfg_value(c, d->name, "tap"),
						"guest_mac", cfg_value(c, d->name, "mac"),
						"transport", transport_of(c, d->name)));
		} else if (!strcmp(d->ops->type, "virtio-rng") && !entropy) {
			entropy = entropy_json(c, d->name);
		}
	}
	boot = json_pack("{s:s?,s:s?,s:s}", "kernel_image_path", m->kernel, "initrd_path",
			 m->initrd, "boot_args", m->cmdline ? m->cmdline : "");
	return json_pack("{s:o,s:o,s:o,s:o,s:o?}", "boot-source", boot, "drives", drives,
			 "machine-config", machine_config_json(m), "network-interfaces", nics,
			 "entropy", entropy);
}

static json_t *latencies(const uint64_t *ring, unsigned n)
{
	json_t *arr = json_array();
	unsigned have = n < 64 ? n : 64;

	for (unsigned i = 0; i < have; i++)
		json_array_append_new(arr, json_integer((json_int_t)ring[(n - have + i) % 64]));
	return arr;
}

/* GET /machine: what --check --json prints, and the last pause and resume latencies. */
static json_t *machine_json(const struct api *a, const struct machine *m)
{
	json_t *o = layout_json(m);

	json_object_set_new(o, "latency_ns",
			    json_pack("{s:o,s:o}", "pause", latencies(a->pause_ns, a->npause),
				      "resume", latencies(a->resume_ns, a->nresume)));
	return o;
}

/* Answer with what the machine is (running) or would be (pre-boot: loaded to look at it). */
static void get_machine(struct api *a, struct http_reply *r,
			json_t *(*fn)(const struct api *a, const struct machine *m))
{
	struct capture cap;
	struct machine m;
	char *msg;

	if (a->running)
		return reply_json(r, 200, fn(a, a->running));
	capture_begin(&cap);
	if (load(a, &m, false)) {
		msg = capture_end(&cap);
		fault(r, "%s", msg ? msg : "the machine does not load");
		free(msg);
	} else {
		free(capture_end(&cap));
		reply_json(r, 200, fn(a, &m));
	}
	machine_free(&m);
}

static json_t *get_vm_config(const struct api *a, const struct machine *m)
{
	(void)a;
	return vm_config_json(m);
}

static json_t *get_machine_config(const struct api *a, const struct machine *m)
{
	(void)a;
	return machine_config_json(m);
}

/* ---- actions and state ---- */

static void instance_start(struct api *a, struct http_reply *r)
{
	struct capture cap;
	struct machine *m;
	char *msg;
	int err;

	if (!find_res(a, RES_BOOT, NULL))
		return fault(r, "InstanceStart: no kernel (PUT /boot-source first)");
	m = calloc(1, sizeof(*m));
	if (!m)
		return fault(r, "out of memory");
	capture_begin(&cap);
	err = load(a, m, true);
	if (!err)
		err = a->ops.start(a->opaque, m);
	msg = capture_end(&cap);
	if (err) {
		/* Nothing of it is left: the next InstanceStart starts from scratch. */
		machine_free(m);
		free(m);
		fault(r, "InstanceStart: %s", msg && *msg ? msg : "the VM did not start");
	} else {
		a->running = m;
		a->state = API_RUNNING;
		r->status = 204;
	}
	free(msg);
}

static void actions(struct api *a, struct body *b)
{
	static const char *const known[] = {"action_type", NULL};
	const char *action;

	only(b, known, NULL);
	action = get_str(b, "action_type", true);
	if (b->failed)
		return;
	if (!strcmp(action, "InstanceStart")) {
		if (a->state != API_NOT_STARTED)
			return bad(b, "InstanceStart: the microVM is running already");
		return instance_start(a, b->r);
	}
	if (!strcmp(action, "SendCtrlAltDel"))
		return bad(b, "SendCtrlAltDel: microvm's machines have no keyboard controller to "
			      "send it to; use the guest's own shutdown, or Stop");
	if (!strcmp(action, "FlushMetrics"))
		return bad(b, "FlushMetrics: microvm keeps no metrics file (PUT /metrics is not "
			      "supported); --boot-report writes its figures at exit");
	if (!strcmp(action, "Stop")) {
		if (a->state == API_NOT_STARTED)
			return bad(b, "Stop: the microVM is not running");
		a->ops.stop(a->opaque);
		b->r->status = 204;
		return;
	}
	bad(b,
	    "action_type: '%s' is not one of InstanceStart, SendCtrlAltDel, FlushMetrics, "
	    "Stop",
	    action);
}

static void patch_vm(struct api *a, struct body *b)
{
	static const char *const known[] = {"state", NULL};
	static const char *const states[] = {"Paused", "Resumed", NULL};
	uint64_t t0;
	int st, err;

	only(b, known, NULL);
	st = get_enum(b, "state", states);
	if (!b->failed && st < 0)
		bad(b, "state: required");
	if (b->failed)
		return;
	if (a->state == API_NOT_STARTED)
		return bad(b, "state: the microVM is not running");
	if (a->state == (st == 0 ? API_PAUSED : API_RUNNING)) {
		b->r->status = 204; /* already so: nothing to do, nothing measured */
		return;
	}
	t0 = timeline_clock_ns();
	err = st == 0 ? a->ops.pause(a->opaque) : a->ops.resume(a->opaque);
	if (err)
		return bad(b, "state: cannot %s: %s", st == 0 ? "pause" : "resume", strerror(-err));
	if (st == 0) {
		a->pause_ns[a->npause++ % 64] = timeline_clock_ns() - t0;
		a->state = API_PAUSED;
	} else {
		a->resume_ns[a->nresume++ % 64] = timeline_clock_ns() - t0;
		a->state = API_RUNNING;
	}
	b->r->status = 204;
}

/* ---- snapshots ---- */

static void snapshot_create(struct api *a, struct body *b)
{
	static const char *const known[] = {"snapshot_type", "snapshot_path", "mem_file_path",
					    NULL};
	static const char *const refused[] = {"version", "snapshot versions are Firecracker's",
					      NULL};
	static const char *const types[] = {"Full", NULL};
	const char *state, *mem;
	struct capture cap;
	char *msg;
	int err;

	only(b, known, refused);
	get_enum(b, "snapshot_type", types);
	state = get_str(b, "snapshot_path", true);
	mem = get_str(b, "mem_file_path", true);
	if (b->failed)
		return;
	if (a->state != API_PAUSED)
		return bad(b, "snapshot/create: the microVM must be paused first (PATCH /vm "
			      "{\"state\": \"Paused\"})");
	if (!a->ops.snapshot)
		return bad(b, "snapshot/create: not available here");
	capture_begin(&cap);
	err = a->ops.snapshot(a->opaque, state, mem);
	msg = capture_end(&cap);
	if (err)
		bad(b, "snapshot/create: %s", msg && *msg ? msg : strerror(-err));
	else
		b->r->status = 204;
	free(msg);
}

/* A JSON string of at most max bytes, printable, without a NUL inside: its text, else NULL. */
static const char *plain_str(const json_t *v, size_t max)
{
	const char *s = json_string_value(v);

	return s && strlen(s) == json_string_length(v) && strlen(s) <= max && printable(s) ? s
											   : NULL;
}

/*
 * network_overrides: [{"iface_id": ID, "host_dev_name": TAP, "guest_mac": MAC}, ...] as
 * "ID.tap=TAP" and "ID.mac=MAC" (at most 2 per entry). Firecracker's entries have iface_id
 * and host_dev_name; guest_mac is microvm's (a clone's own MAC address), and either may be
 * left out, not both.
 */
static int net_overrides(struct body *b, char ***args, size_t *n)
{
	json_t *list = json_object_get(b->obj, "network_overrides"), *o;
	size_t i;

	*args = NULL;
	*n = 0;
	if (!list || json_is_null(list))
		return 0;
	if (!json_is_array(list) || json_array_size(list) > NET_OVERRIDES_MAX) {
		bad(b, "network_overrides: must be a list of at most %d objects",
		    NET_OVERRIDES_MAX);
		return -1;
	}
	*args = calloc(2 * json_array_size(list) + 1, sizeof(**args));
	if (!*args)
		return -1;
	json_array_foreach(list, i, o)
	{
		json_t *id = json_object_get(o, "iface_id"),
		       *tap = json_object_get(o, "host_dev_name"),
		       *mac = json_object_get(o, "guest_mac");
		const char *name = json_is_string(id) ? json_string_value(id) : NULL, *m;
		uint8_t addr[6];

		if (!json_is_object(o) || !name || !valid_id(name) || (!tap && !mac) ||
		    json_object_size(o) != (size_t)(1 + !!tap + !!mac) ||
		    (tap && !plain_str(tap, 64)) || (mac && !json_is_string(mac))) {
			bad(b,
			    "network_overrides[%zu]: needs iface_id (a NIC's id) and host_dev_name "
			    "(a TAP name), guest_mac (a MAC address) or both, and nothing else",
			    i);
			return -1;
		}
		m = mac ? plain_str(mac, 32) : NULL;
		if (mac && (!m || net_parse_mac(m, addr))) {
			bad(b,
			    "network_overrides[%zu]: guest_mac%s%s%s: not a unicast MAC address "
			    "like 02:00:00:00:00:01",
			    i, m ? " '" : "", m ? m : "", m ? "'" : "");
			return -1;
		}
		if ((tap &&
		     asprintf(&(*args)[(*n)++], "%s.tap=%s", name, json_string_value(tap)) < 0) ||
		    (mac &&
		     asprintf(&(*args)[(*n)++], "%s.mac=%s", name, json_string_value(mac)) < 0)) {
			(*args)[--(*n)] = NULL;
			return -1;
		}
	}
	return 0;
}

static void snapshot_load(struct api *a, struct body *b)
{
	static const char *const known[] = {
		"snapshot_path",	 "mem_file_path",     "mem_backend",	   "resume_vm",
		"enable_diff_snapshots", "track_dirty_pages", "network_overrides", NULL};
	static const char *const backend_known[] = {"backend_type", "backend_path", NULL};
	static const char *const backends[] = {"File", NULL};
	struct machine_override ov[2 * NET_OVERRIDES_MAX + 1];
	const char *state, *mem;
	struct capture cap;
	char **args = NULL, *msg;
	size_t nargs = 0;
	int resume, err;
	json_t *mb;

	only(b, known, NULL);
	state = get_str(b, "snapshot_path", true);
	mem = get_str(b, "mem_file_path", false);
	resume = get_bool(b, "resume_vm", false);
	if (get_bool(b, "enable_diff_snapshots", false) > 0 ||
	    get_bool(b, "track_dirty_pages", false) > 0)
		bad(b, "enable_diff_snapshots, track_dirty_pages: microvm takes full snapshots "
		       "only");
	mb = json_object_get(b->obj, "mem_backend");
	if (!b->failed && mb && !json_is_null(mb)) {
		struct body sub = {.r = b->r, .obj = mb};

		if (mem || !json_is_object(mb))
			return bad(b, "mem_backend: an object, instead of mem_file_path");
		only(&sub, backend_known, NULL);
		if (!sub.failed && get_enum(&sub, "backend_type", backends) < 0 && !sub.failed)
			bad(&sub, "backend_type: required (File)");
		mem = get_str(&sub, "backend_path", true);
		b->failed = sub.failed;
	}
	if (!b->failed && !mem)
		bad(b, "mem_backend: required (or mem_file_path)");
	if (!b->failed && a->state != API_NOT_STARTED)
		bad(b, "snapshot/load: the microVM has started already; load into a new one");
	if (!b->failed && a->nres)
		bad(b, "snapshot/load: the snapshot holds the whole machine; load it into an "
		       "instance nothing was configured on");
	if (!b->failed && !a->ops.load)
		bad(b, "snapshot/load: not available here");
	if (b->failed || net_overrides(b, &args, &nargs)) {
		if (!b->failed)
			bad(b, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nargs; i++)
		ov[i] = (struct machine_override){.arg = args[i],
						  .origin = "PUT /snapshot/load",
						  .field = "network_overrides"};
	capture_begin(&cap);
	err = a->ops.load(a->opaque, state, mem, resume > 0, ov, nargs, &a->running);
	msg = capture_end(&cap);
	if (err) {
		bad(b, "snapshot/load: %s", msg && *msg ? msg : "the VM did not start");
	} else {
		a->state = resume > 0 ? API_RUNNING : API_PAUSED;
		b->r->status = 204;
	}
	free(msg);
out:
	for (size_t i = 0; i < nargs; i++)
		free(args[i]);
	free(args);
}

/* ---- dispatch ---- */

static const char *const state_names[] = {"Not started", "Running", "Paused"};

/* The id after "/drives/" in url, or NULL when url is not under prefix. */
static const char *under(const char *url, const char *prefix)
{
	size_t n = strlen(prefix);

	return !strncmp(url, prefix, n) && url[n] == '/' && url[n + 1] && !strchr(url + n + 1, '/')
		       ? url + n + 1
		       : NULL;
}

void api_handle(void *opaque, const char *method, const char *url, const char *body, size_t len,
		struct http_reply *r)
{
	struct api *a = opaque;
	bool get = !strcmp(method, "GET"), put = !strcmp(method, "PUT"),
	     patch = !strcmp(method, "PATCH");
	struct body b = {.r = r};
	char path[HTTP_URL_MAX + 1];
	const char *id;

	/* The query string plays no part; the path is matched as sent. */
	snprintf(path, sizeof(path), "%s", url);
	path[strcspn(path, "?#")] = '\0';
	if (get && (!strcmp(path, "/") || !*path))
		return reply_json(r, 200,
				  json_pack("{s:s,s:s,s:s,s:s}", "id", a->id, "state",
					    state_names[a->state], "vmm_version", MICROVM_VERSION,
					    "app_name", "microvm"));
	if (get && !strcmp(path, "/version"))
		return reply_json(r, 200,
				  json_pack("{s:s}", "firecracker_version", MICROVM_VERSION));
	if (get && !strcmp(path, "/vm/config"))
		return get_machine(a, r, get_vm_config);
	if (get && !strcmp(path, "/machine-config"))
		return get_machine(a, r, get_machine_config);
	if (get && !strcmp(path, "/machine"))
		return get_machine(a, r, machine_json);
	if (get && (!strcmp(path, "/balloon") || !strcmp(path, "/balloon/statistics")))
		return get_balloon(a, r, strcmp(path, "/balloon") != 0);
	if (!put && !patch) {
		fault(r, "Invalid request method and/or path: %s %s", method, path);
		return;
	}
	/* Every other resource takes a JSON body. */
	if (!strcmp(path, "/logger") || !strcmp(path, "/metrics") || !strcmp(path, "/mmds") ||
	    !strcmp(path, "/mmds/config") || !strcmp(path, "/cpu-config"))
		return fault(r, "%s %s: not supported by microvm", method, path);
	b.obj = parse_body(body, len, r);
	if (!b.obj)
		return;
	if (patch && !strcmp(path, "/vm"))
		patch_vm(a, &b);
	else if (patch && (!strcmp(path, "/balloon") || !strcmp(path, "/balloon/statistics")))
		patch_balloon(a, &b, strcmp(path, "/balloon") != 0);
	else if (put && !strcmp(path, "/balloon") && a->state != API_NOT_STARTED)
		fault(r,
		      "PUT /balloon: the requested operation is not supported after starting the "
		      "microVM (PATCH /balloon changes the target)");
	else if (put && !strcmp(path, "/balloon"))
		put_balloon(a, &b, method, path);
	else if (put && !strcmp(path, "/actions"))
		actions(a, &b);
	else if (put && !strcmp(path, "/snapshot/create"))
		snapshot_create(a, &b);
	else if (put && !strcmp(path, "/snapshot/load"))
		snapshot_load(a, &b);
	else if (!strcmp(path, "/machine-config") || !strcmp(path, "/boot-source") ||
		 under(path, "/drives") || under(path, "/network-interfaces") ||
		 !strcmp(path, "/entropy") || !strcmp(path, "/vsock")) {
		if (a->state != API_NOT_STARTED)
			fault(r,
			      "%s %s: the requested operation is not supported after starting "
			      "the microVM",
			      method, path);
		else if (!strcmp(path, "/machine-config"))
			put_machine_config(a, &b, method, path);
		else if (patch)
			fault(r, "PATCH %s: not supported by microvm (PUT it again)", path);
		else if (!strcmp(path, "/boot-source"))
			put_boot_source(a, &b, method, path);
		else if (!strcmp(path, "/vsock"))
			put_vsock(a, &b, method, path);
		else if ((id = under(path, "/drives")))
			put_drive(a, &b, id, method, path);
		else if ((id = under(path, "/network-interfaces")))
			put_nic(a, &b, id, method, path);
		else if (!strcmp(path, "/entropy"))
			put_entropy(a, &b, method, path);
	} else {
		fault(r, "Invalid request method and/or path: %s %s", method, path);
	}
	json_decref(b.obj);
}

/* ---- set-up ---- */

int api_init(struct api *a, const char *id, const char *name, const char *base,
	     const struct machine_override *base_ov, size_t nbase_ov, const struct api_ops *ops,
	     void *opaque)
{
	struct machine m;
	struct machine_src src = {.path = name, .text = base, .ov = base_ov, .nov = nbase_ov};
	int err;

	json_object_seed(0); /* jansson reads /dev/urandom once: now, before lock-down */
	*a = (struct api){.id = id,
			  .base = base,
			  .basename = name,
			  .base_ov = base_ov,
			  .nbase_ov = nbase_ov,
			  .ops = *ops,
			  .opaque = opaque};
	err = machine_load_src(&m, &src, false);
	if (!err) {
		a->base_cmdline = strdup(m.cmdline ? m.cmdline : "");
		a->reserved = calloc(m.cfg.nsections + 1, sizeof(*a->reserved));
		for (size_t i = 0; a->reserved && i < m.cfg.nsections; i++)
			a->reserved[a->nreserved++] = strdup(m.cfg.sections[i].name);
		if (!a->base_cmdline || !a->reserved)
			err = -ENOMEM;
	}
	machine_free(&m);
	return err;
}

void api_init_running(struct api *a, const char *id, const struct machine *m,
		      const struct api_ops *ops, void *opaque)
{
	json_object_seed(0); /* jansson reads /dev/urandom once: now, before lock-down */
	*a = (struct api){
		.id = id, .running = m, .state = API_RUNNING, .ops = *ops, .opaque = opaque};
}

void api_free(struct api *a)
{
	for (size_t i = 0; i < a->nres; i++)
		res_clear(&a->res[i]);
	for (size_t i = 0; i < a->nreserved; i++)
		free(a->reserved[i]);
	free(a->reserved);
	free(a->res);
	free(a->base_cmdline);
	memset(a, 0, sizeof(*a));
}
