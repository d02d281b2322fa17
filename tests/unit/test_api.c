/*
 * api: the control API. Its resources describe the same machine as the INI way, what it
 * refuses it refuses by name, its state follows the (faked) monitor; the HTTP parser's
 * bounds; the server on an event loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/api.h"
#include "api/http.h"
#include "arch.h"
#include "device.h"
#include "log.h"
#include "loop.h"
#include "machine.h"
#include "test.h"

/* ---- the monitor, faked ---- */

struct fake {
	int starts, pauses, resumes, stops, snapshots, loads;
	int start_ret, pause_ret;	    /* what the next start, pause answers */
	struct machine *m;		    /* the machine a start took */
	char state[256], mem[256], ov[256]; /* the last snapshot's or load's files, overrides */
	bool resume;
	struct machine loaded;	 /* what a load "runs" (the default machine) */
	struct balloon_info bal; /* the running balloon, faked */
	int balloon_ops;
};

static int fake_start(void *opaque, struct machine *m)
{
	struct fake *f = opaque;

	f->starts++;
	if (f->start_ret) {
		log_error("fake: no KVM here");
		return f->start_ret;
	}
	f->m = m;
	return 0;
}

static int fake_pause(void *opaque)
{
	struct fake *f = opaque;

	f->pauses++;
	return f->pause_ret;
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

static int fake_snapshot(void *opaque, const char *state, const char *mem)
{
	struct fake *f = opaque;

	f->snapshots++;
	snprintf(f->state, sizeof(f->state), "%s", state);
	snprintf(f->mem, sizeof(f->mem), "%s", mem);
	if (strstr(state, "fail")) {
		log_error("fake: cannot write %s", state);
		return -EIO;
	}
	return 0;
}

static int fake_load(void *opaque, const char *state, const char *mem, bool resume,
		     const struct machine_override *ov, size_t nov, const struct machine **m)
{
	struct fake *f = opaque;
	struct machine_src src = {.path = "default", .text = arch_arm64.default_machine};

	f->loads++;
	snprintf(f->state, sizeof(f->state), "%s", state);
	snprintf(f->mem, sizeof(f->mem), "%s", mem);
	f->resume = resume;
	f->ov[0] = '\0';
	for (size_t i = 0; i < nov; i++)
		snprintf(f->ov + strlen(f->ov), sizeof(f->ov) - strlen(f->ov), "%s%s", i ? " " : "",
			 ov[i].arg);
	if (strstr(state, "fail")) {
		log_error("fake: %s is damaged", state);
		return -1;
	}
	if (machine_load_src(&f->loaded, &src, false))
		return -1;
	*m = &f->loaded;
	return 0;
}

/* A balloon as the device answers: a target up to 1 GiB, statistics never turned on or off. */
static int fake_balloon(void *opaque, enum api_balloon_op op, uint32_t value,
			struct balloon_info *info)
{
	struct fake *f = opaque;

	f->balloon_ops++;
	if (!f->m || !cfg_section(&f->m->cfg, "balloon"))
		return -ENODEV;
	if (op == API_BALLOON_TARGET && value > 1024)
		return -EINVAL;
	if (op == API_BALLOON_INTERVAL && !value != !f->bal.stats_interval_s)
		return -EINVAL;
	if (op == API_BALLOON_TARGET) {
		f->bal.amount_mib = value;
		f->bal.target_pages = value * 256;
	} else if (op == API_BALLOON_INTERVAL) {
		f->bal.stats_interval_s = value;
	}
	*info = f->bal;
	return 0;
}

static const struct api_ops fake_ops = {fake_start,    fake_pause, fake_resume, fake_stop,
					fake_snapshot, fake_load,  fake_balloon};

static void fake_free(struct fake *f)
{
	if (f->loads)
		machine_free(&f->loaded);
	if (f->m)
		machine_free(f->m);
	free(f->m);
	f->m = NULL;
}

/* ---- requests ---- */

static char reply[8192]; /* the last reply's body, "" when none */

static int req(struct api *a, const char *method, const char *url, const char *body)
{
	struct http_reply r = {0};

	api_handle(a, method, url, body, body ? strlen(body) : 0, &r);
	snprintf(reply, sizeof(reply), "%s", r.body ? r.body : "");
	free(r.body);
	return r.status;
}

/* The last reply's string field key, or "" (a reply that is not JSON is a failure). */
static const char *reply_str(const char *key)
{
	static char out[4096];
	json_t *j = json_loads(reply, 0, NULL), *v = j ? json_object_get(j, key) : NULL;

	CHECK(j != NULL);
	snprintf(out, sizeof(out), "%s", json_is_string(v) ? json_string_value(v) : "");
	json_decref(j);
	return out;
}

/* The last reply was a 400 whose fault_message names word. */
static bool refused_naming(int status, const char *word)
{
	const char *msg = reply_str("fault_message");

	if (status == 400 && strstr(msg, word))
		return true;
	printf("  status %d, fault_message '%s', expected 400 naming '%s'\n", status, msg, word);
	return false;
}

/* PUT url with a body made from fmt: the status. */
static int put(struct api *a, const char *url, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int put(struct api *a, const char *url, const char *fmt, ...)
{
	char body[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	return req(a, "PUT", url, body);
}

/* ---- files for a machine ---- */

struct files {
	char dir[32];
	char kernel[64], initrd[64], root[64], data[64];
};

static void write_file(const char *path, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	char *buf = calloc(1, len);

	CHECK(fd >= 0 && buf && write(fd, buf, len) == (ssize_t)len);
	if (fd >= 0)
		close(fd);
	free(buf);
}

static void files_make(struct files *f)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/mvapi-XXXXXX");
	CHECK(mkdtemp(f->dir) != NULL);
	snprintf(f->kernel, sizeof(f->kernel), "%s/Image", f->dir);
	snprintf(f->initrd, sizeof(f->initrd), "%s/initrd", f->dir);
	snprintf(f->root, sizeof(f->root), "%s/root.img", f->dir);
	snprintf(f->data, sizeof(f->data), "%s/data.img", f->dir);
	write_file(f->kernel, 4096);
	write_file(f->initrd, 4096);
	write_file(f->root, 64 << 10);
	write_file(f->data, 32 << 10);
}

static void files_remove(struct files *f)
{
	unlink(f->kernel);
	unlink(f->initrd);
	unlink(f->root);
	unlink(f->data);
	rmdir(f->dir);
}

static bool api_new(struct api *a, struct fake *f)
{
	*f = (struct fake){0};
	return api_init(a, "test-vm", "default machine", arch_arm64.default_machine, NULL, 0,
			&fake_ops, f) == 0;
}

/* ---- the same machine both ways ---- */

/* The files of a machine and an API on the default one; false (said, nothing left) if not. */
static bool begin(struct api *a, struct fake *f, struct files *fs)
{
	files_make(fs);
	if (api_new(a, f))
		return true;
	CHECK(!"api_init");
	files_remove(fs);
	return false;
}

static bool same_str(const char *x, const char *y)
{
	return (!x && !y) || (x && y && !strcmp(x, y));
}

static void check_same_machine(const struct machine *x, const struct machine *y)
{
	const struct alloc *ax = &x->alloc, *ay = &y->alloc;

	CHECK_EQ(x->vcpus, y->vcpus);
	CHECK_EQ(x->ram_base, y->ram_base);
	CHECK_EQ(x->ram_size, y->ram_size);
	CHECK(same_str(x->kernel, y->kernel));
	CHECK(same_str(x->initrd, y->initrd));
	CHECK(same_str(x->cmdline, y->cmdline));
	CHECK_EQ(x->ndevices, y->ndevices);
	for (size_t i = 0; i < x->ndevices && i < y->ndevices; i++) {
		const struct device *dx = &x->devices[i], *dy = &y->devices[i];

		CHECK_STR(dx->name, dy->name);
		CHECK_STR(dx->ops->type, dy->ops->type);
		CHECK(same_str(cfg_value(&x->cfg, dx->name, "transport"),
			       cfg_value(&y->cfg, dy->name, "transport")));
		CHECK(same_str(cfg_value(&x->cfg, dx->name, "readonly"),
			       cfg_value(&y->cfg, dy->name, "readonly")));
		CHECK(same_str(cfg_value(&x->cfg, dx->name, "path"),
			       cfg_value(&y->cfg, dy->name, "path")));
	}
	CHECK_EQ(ax->nregions, ay->nregions);
	for (size_t i = 0; i < ax->nregions && i < ay->nregions; i++) {
		const struct alloc_region *rx = &ax->regions[i], *ry = &ay->regions[i];

		CHECK_STR(rx->owner, ry->owner);
		CHECK_STR(rx->what, ry->what);
		CHECK_EQ(rx->base, ry->base);
		CHECK_EQ(rx->size, ry->size);
		CHECK_EQ(rx->irq_first, ry->irq_first);
		CHECK_EQ(rx->irq_count, ry->irq_count);
	}
	CHECK_EQ(ax->nirqs, ay->nirqs);
	for (size_t i = 0; i < ax->nirqs && i < ay->nirqs; i++) {
		CHECK_EQ(ax->irqs[i].irq, ay->irqs[i].irq);
		CHECK_STR(ax->irqs[i].owner, ay->irqs[i].owner);
	}
}

/* The index of device name in m, or -1. */
static int device_index(const struct machine *m, const char *name)
{
	for (size_t i = 0; i < m->ndevices; i++)
		if (!strcmp(m->devices[i].name, name))
			return (int)i;
	return -1;
}

static void json_equals_ini(void)
{
	struct files fs;
	struct fake f;
	struct api a;
	struct machine mj, mi;
	char sets[16][128];
	struct machine_override ov[16];
	struct machine_src src = {
		.path = "default machine", .text = arch_arm64.default_machine, .ov = ov};
	json_t *cfg, *drives;

	if (!begin(&a, &f, &fs))
		return;
	CHECK_EQ(put(&a, "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}"), 204);
	CHECK_EQ(put(&a, "/boot-source", "{\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\"}",
		     fs.kernel, fs.initrd),
		 204);
	/* Put before the root drive: the root drive still comes first (/dev/vda). */
	CHECK_EQ(
		put(&a, "/drives/data",
		    "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
		    "\"is_read_only\": true, \"transport\": \"pci\"}",
		    fs.data),
		204);
	CHECK_EQ(put(&a, "/drives/rootfs",
		     "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": "
		     "true, "
		     "\"is_read_only\": false}",
		     fs.root),
		 204);
	CHECK_EQ(put(&a, "/network-interfaces/eth0",
		     "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}"),
		 204);
	CHECK_EQ(api_machine(&a, &mj), 0);

	/* The INI way: the default machine and --set overrides. */
	snprintf(sets[0], 128, "machine.vcpus=2");
	snprintf(sets[1], 128, "memory.size=256M");
	snprintf(sets[2], 128, "boot.kernel=%s", fs.kernel);
	snprintf(sets[3], 128, "boot.initrd=%s", fs.initrd);
	snprintf(sets[4], 128, "boot.cmdline=panic=-1 root=/dev/vda rw");
	snprintf(sets[5], 128, "rootfs.type=virtio-blk");
	snprintf(sets[6], 128, "rootfs.path=%s", fs.root);
	snprintf(sets[7], 128, "rootfs.readonly=off");
	snprintf(sets[8], 128, "data.type=virtio-blk");
	snprintf(sets[9], 128, "data.path=%s", fs.data);
	snprintf(sets[10], 128, "data.readonly=on");
	snprintf(sets[11], 128, "data.transport=pci");
	snprintf(sets[12], 128, "eth0.type=virtio-net");
	snprintf(sets[13], 128, "eth0.tap=tap0");
	for (src.nov = 0; src.nov < 14; src.nov++)
		ov[src.nov] = (struct machine_override){.arg = sets[src.nov], .origin = "--set"};
	CHECK_EQ(machine_load_src(&mi, &src, false), 0);

	check_same_machine(&mj, &mi);
	CHECK_EQ(mj.vcpus, 2);
	CHECK_EQ(mj.ram_size, 256ull << 20);
	CHECK(same_str(mj.cmdline, "panic=-1 root=/dev/vda rw"));
	CHECK(device_index(&mj, "rootfs") >= 0);
	CHECK(device_index(&mj, "rootfs") < device_index(&mj, "data"));
	CHECK(device_index(&mj, "data") < device_index(&mj, "eth0"));
	machine_free(&mj);
	machine_free(&mi);

	/* GET /vm/config says the same in Firecracker's shapes. */
	CHECK_EQ(req(&a, "GET", "/vm/config", NULL), 200);
	cfg = json_loads(reply, 0, NULL);
	drives = json_object_get(cfg, "drives");
	CHECK_EQ(json_array_size(drives), 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(drives, 0), "drive_id")),
		  "rootfs");
	CHECK(json_is_true(json_object_get(json_array_get(drives, 0), "is_root_device")));
	CHECK(json_is_true(json_object_get(json_array_get(drives, 1), "is_read_only")));
	CHECK_STR(json_string_value(json_object_get(json_array_get(drives, 1), "transport")),
		  "pci");
	CHECK_EQ(json_integer_value(
			 json_object_get(json_object_get(cfg, "machine-config"), "mem_size_mib")),
		 256);
	json_decref(cfg);
	CHECK_EQ(req(&a, "GET", "/machine", NULL), 200);
	CHECK_EQ(req(&a, "GET", "/machine-config", NULL), 200);
	api_free(&a);
	fake_free(&f);
	files_remove(&fs);
}

/* ---- what is refused ---- */

static void refused_fields(void)
{
	static const char *const mc[][2] = {
		{"smt", "true"},
		{"track_dirty_pages", "true"},
		{"cpu_template", "\"T2\""},
		{"huge_pages", "\"2M\""},
		{"smt", "\"false\""},
		{"track_dirty_pages", "\"0\""},
	};
	static const char *const mc_ok[][2] = {
		{"smt", "false"},
		{"track_dirty_pages", "false"},
		{"cpu_template", "\"None\""},
		{"huge_pages", "\"None\""},
		{"smt", "null"},
		{"cpu_template", "null"},
	};
	static const char *const reserved[] = {"uart0", "gic", "pci", "boot", "memory"};
	struct files fs;
	struct fake f;
	struct api a;

	if (!begin(&a, &f, &fs))
		return;
	for (size_t i = 0; i < sizeof(mc) / sizeof(mc[0]); i++)
		CHECK(refused_naming(put(&a, "/machine-config",
					 "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"%s\": %s}",
					 mc[i][0], mc[i][1]),
				     mc[i][0]));
	for (size_t i = 0; i < sizeof(mc_ok) / sizeof(mc_ok[0]); i++)
		CHECK_EQ(put(&a, "/machine-config",
			     "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"%s\": %s}", mc_ok[i][0],
			     mc_ok[i][1]),
			 204);

	/* Drives: rate_limiter and socket. */
	CHECK(refused_naming(put(&a, "/drives/d1",
				 "{\"drive_id\": \"d1\", \"path_on_host\": \"%s\", "
				 "\"is_root_device\": false, \"rate_limiter\": {\"bandwidth\": "
				 "{\"size\": 1, \"refill_time\": 100}}}",
				 fs.data),
			     "rate_limiter"));
	CHECK(refused_naming(put(&a, "/drives/d1",
				 "{\"drive_id\": \"d1\", \"path_on_host\": \"%s\", "
				 "\"is_root_device\": false, \"socket\": \"/run/vhost.sock\"}",
				 fs.data),
			     "socket"));
	CHECK_EQ(put(&a, "/drives/d1",
		     "{\"drive_id\": \"d1\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
		     "\"rate_limiter\": null, \"socket\": null}",
		     fs.data),
		 204);
	/* NICs: the rate limiters. */
	CHECK(refused_naming(put(&a, "/network-interfaces/n1",
				 "{\"iface_id\": \"n1\", \"host_dev_name\": \"tap1\", "
				 "\"rx_rate_limiter\": {}}"),
			     "rx_rate_limiter"));
	CHECK(refused_naming(
		put(&a, "/network-interfaces/n1",
		    "{\"iface_id\": \"n1\", \"host_dev_name\": \"tap1\", "
		    "\"tx_rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time\": 1}}}"),
		"tx_rate_limiter"));
	CHECK_EQ(put(&a, "/network-interfaces/n1",
		     "{\"iface_id\": \"n1\", \"host_dev_name\": \"tap1\", \"rx_rate_limiter\": "
		     "null, "
		     "\"tx_rate_limiter\": null}"),
		 204);

	/* Unknown fields, by name. */
	CHECK(refused_naming(put(&a, "/machine-config",
				 "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"vcpus\": 2}"),
			     "vcpus"));
	CHECK(refused_naming(put(&a, "/boot-source",
				 "{\"kernel_image_path\": \"%s\", \"kernel_args\": \"x\"}",
				 fs.kernel),
			     "kernel_args"));
	CHECK(refused_naming(req(&a, "PUT", "/actions", "{\"action_type\": \"Stop\", \"x\": 1}"),
			     "x"));
	/* Type errors. */
	CHECK(refused_naming(
		put(&a, "/machine-config", "{\"vcpu_count\": \"2\", \"mem_size_mib\": 128}"),
		"vcpu_count"));
	CHECK(refused_naming(
		put(&a, "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": -1}"),
		"mem_size_mib"));
	CHECK(refused_naming(
		put(&a, "/machine-config", "{\"vcpu_count\": 1.5, \"mem_size_mib\": 1}"),
		"vcpu_count"));
	CHECK(refused_naming(put(&a, "/drives/d2",
				 "{\"drive_id\": \"d2\", \"path_on_host\": \"%s\", "
				 "\"is_root_device\": \"yes\"}",
				 fs.data),
			     "is_root_device"));
	CHECK(refused_naming(put(&a, "/drives/d2",
				 "{\"drive_id\": 2, \"path_on_host\": \"%s\", "
				 "\"is_root_device\": false}",
				 fs.data),
			     "drive_id"));
	CHECK(refused_naming(
		put(&a, "/boot-source", "{\"kernel_image_path\": [\"%s\"]}", fs.kernel),
		"kernel_image_path"));
	CHECK(refused_naming(req(&a, "PATCH", "/vm", "{\"state\": 1}"), "state"));
	CHECK_EQ(req(&a, "PUT", "/machine-config", "[1, 2]"), 400);
	CHECK_EQ(req(&a, "PUT", "/machine-config", "{\"vcpu_count\": "), 400);
	CHECK_EQ(req(&a, "PUT", "/machine-config", ""), 400);
	CHECK_EQ(req(&a, "PUT", "/machine-config", NULL), 400);
	CHECK_EQ(req(&a, "PUT", "/machine-config", "{\"vcpu_count\": 1} {}"), 400);
	CHECK_EQ(req(&a, "PUT", "/machine-config",
		     "{\"vcpu_count\": 1, \"vcpu_count\": 2, \"mem_size_mib\": 128}"),
		 400);
	/* The id in the path and the body's must agree, and name no part of the machine. */
	CHECK(refused_naming(put(&a, "/drives/d3",
				 "{\"drive_id\": \"d4\", \"path_on_host\": \"%s\", "
				 "\"is_root_device\": false}",
				 fs.data),
			     "drive_id"));
	CHECK(refused_naming(put(&a, "/network-interfaces/n2",
				 "{\"iface_id\": \"n3\", \"host_dev_name\": \"tap2\"}"),
			     "iface_id"));
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		char url[64];

		snprintf(url, sizeof(url), "/drives/%s", reserved[i]);
		CHECK(refused_naming(put(&a, url,
					 "{\"drive_id\": \"%s\", \"path_on_host\": \"%s\", "
					 "\"is_root_device\": false}",
					 reserved[i], fs.data),
				     reserved[i]));
		snprintf(url, sizeof(url), "/network-interfaces/%s", reserved[i]);
		CHECK(refused_naming(put(&a, url,
					 "{\"iface_id\": \"%s\", \"host_dev_name\": \"t\"}",
					 reserved[i]),
				     reserved[i]));
	}
	/* A drive's id is not a NIC's. */
	CHECK(refused_naming(put(&a, "/network-interfaces/d1",
				 "{\"iface_id\": \"d1\", \"host_dev_name\": \"tap3\"}"),
			     "d1"));
	CHECK_EQ(put(&a, "/drives/a.b",
		     "{\"drive_id\": \"a.b\", \"path_on_host\": \"%s\", \"is_root_device\": false}",
		     fs.data),
		 400);
	/* NUL bytes: raw, or escaped in a string. */
	{
		static const char raw[] = "{\"action_type\": \"Sto\0p\"}";
		struct http_reply r = {0};

		api_handle(&a, "PUT", "/actions", raw, sizeof(raw) - 1, &r);
		CHECK_EQ(r.status, 400);
		free(r.body);
		CHECK_EQ(req(&a, "PUT", "/boot-source", "{\"kernel_image_path\": \"/a\\u0000b\"}"),
			 400);
	}
	/* A fault_message that is not UTF-8 as formed: a URL's raw bytes, a long message cut
	 * inside a character. It is still there. */
	CHECK(refused_naming(req(&a, "PUT", "/bo\xffot-source", "{}"), "Invalid request"));
	CHECK(refused_naming(put(&a, "/drives/d\xc3", "{\"drive_id\": \"d\"}"), "drive_id"));
	for (int odd = 0; odd < 2; odd++) {
		char path[2400] = "/";
		size_t n = 1 + (size_t)odd;

		path[1] = 'x';
		while (n + 2 < sizeof(path) - 1) {
			memcpy(path + n, "\xc3\xa9", 2); /* e acute */
			n += 2;
		}
		path[n] = '\0';
		CHECK(refused_naming(put(&a, "/drives/long",
					 "{\"drive_id\": \"long\", \"path_on_host\": \"%s\", "
					 "\"is_root_device\": false}",
					 path),
				     "path_on_host"));
	}
	CHECK_EQ(f.stops, 0);
	CHECK_EQ(f.starts, 0);
	api_free(&a);
	files_remove(&fs);
}

/* A PUT that does not load leaves the resource as it was. */
static void failed_put_keeps_previous(void)
{
	struct files fs;
	struct fake f;
	struct api a;
	json_t *cfg, *d;

	if (!begin(&a, &f, &fs))
		return;
	CHECK_EQ(put(&a, "/drives/rootfs",
		     "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": "
		     "true}",
		     fs.root),
		 204);
	CHECK(refused_naming(put(&a, "/drives/rootfs",
				 "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s/missing.img\", "
				 "\"is_root_device\": true}",
				 fs.dir),
			     "missing.img"));
	CHECK(refused_naming(
		put(&a, "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"is_root_device\": true}"),
		"path_on_host"));
	/* A new drive that does not load is not kept either. */
	CHECK_EQ(put(&a, "/drives/extra",
		     "{\"drive_id\": \"extra\", \"path_on_host\": \"%s\", \"is_root_device\": "
		     "false}",
		     fs.kernel + 1 /* relative: not there */),
		 400);
	CHECK_EQ(req(&a, "GET", "/vm/config", NULL), 200);
	cfg = json_loads(reply, 0, NULL);
	CHECK_EQ(json_array_size(json_object_get(cfg, "drives")), 1);
	d = json_array_get(json_object_get(cfg, "drives"), 0);
	CHECK(same_str(json_string_value(json_object_get(d, "path_on_host")), fs.root));
	json_decref(cfg);
	/* The same for machine-config: too much memory for the window. */
	CHECK_EQ(put(&a, "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}"), 204);
	CHECK_EQ(put(&a, "/machine-config", "{\"vcpu_count\": 100000, \"mem_size_mib\": 512}"),
		 400);
	CHECK_EQ(req(&a, "GET", "/machine-config", NULL), 200);
	cfg = json_loads(reply, 0, NULL);
	CHECK_EQ(json_integer_value(json_object_get(cfg, "vcpu_count")), 2);
	CHECK_EQ(json_integer_value(json_object_get(cfg, "mem_size_mib")), 256);
	json_decref(cfg);
	/* PATCH changes what it names and keeps the rest. */
	CHECK_EQ(req(&a, "PATCH", "/machine-config", "{\"mem_size_mib\": 512}"), 204);
	CHECK_EQ(req(&a, "GET", "/machine-config", NULL), 200);
	cfg = json_loads(reply, 0, NULL);
	CHECK_EQ(json_integer_value(json_object_get(cfg, "vcpu_count")), 2);
	CHECK_EQ(json_integer_value(json_object_get(cfg, "mem_size_mib")), 512);
	json_decref(cfg);
	api_free(&a);
	files_remove(&fs);
}

/* ---- the VM's state ---- */

/* PUT /entropy: an entropy device, its rate limiter as rate_limit and rate_burst. */
static void entropy(void)
{
	struct files fs;
	struct fake f;
	struct api a;
	struct machine m;
	json_t *cfg, *bw;
	int i;

	if (!begin(&a, &f, &fs))
		return;
	CHECK_EQ(put(&a, "/boot-source", "{\"kernel_image_path\": \"%s\"}", fs.kernel), 204);
	CHECK(refused_naming(put(&a, "/entropy", "{\"rate_limiter\": 5}"), "must be an object"));
	CHECK(refused_naming(put(&a, "/entropy", "{\"rate\": 5}"), "rate: unknown field"));
	CHECK(refused_naming(put(&a, "/entropy",
				 "{\"rate_limiter\": {\"ops\": {\"size\": 1, "
				 "\"refill_time\": 1}}}"),
			     "ops: not supported"));
	CHECK(refused_naming(put(&a, "/entropy",
				 "{\"rate_limiter\": {\"bandwidth\": "
				 "{\"size\": 1, \"refill_time\": 1, \"one_time_burst\": 9}}}"),
			     "one_time_burst"));
	CHECK(refused_naming(put(&a, "/entropy",
				 "{\"rate_limiter\": {\"bandwidth\": "
				 "{\"size\": 0, \"refill_time\": 100}}}"),
			     "must be positive"));
	CHECK(refused_naming(put(&a, "/entropy",
				 "{\"rate_limiter\": {\"bandwidth\": "
				 "{\"size\": 1024}}}"),
			     "refill_time: required"));
	CHECK_EQ(api_machine(&a, &m), 0);
	CHECK_EQ(device_index(&m, "entropy"), -1);
	machine_free(&m);

	CHECK_EQ(put(&a, "/entropy", "{}"), 204);
	CHECK_EQ(api_machine(&a, &m), 0);
	i = device_index(&m, "entropy");
	CHECK(i >= 0 && !strcmp(m.devices[i].ops->type, "virtio-rng"));
	CHECK_EQ(cfg_value(&m.cfg, "entropy", "rate_limit"), NULL);
	machine_free(&m);

	/* Again: it replaces the first. 1 KiB in 100 ms is 10 KiB/s. */
	CHECK_EQ(put(&a, "/entropy",
		     "{\"rate_limiter\": {\"bandwidth\": {\"size\": 1024, "
		     "\"refill_time\": 100}}}"),
		 204);
	CHECK_EQ(api_machine(&a, &m), 0);
	CHECK(same_str(cfg_value(&m.cfg, "entropy", "rate_limit"), "10240"));
	CHECK(same_str(cfg_value(&m.cfg, "entropy", "rate_burst"), "1024"));
	machine_free(&m);
	CHECK_EQ(req(&a, "GET", "/vm/config", NULL), 200);
	cfg = json_loads(reply, 0, NULL);
	bw = json_object_get(json_object_get(json_object_get(cfg, "entropy"), "rate_limiter"),
			     "bandwidth");
	CHECK_EQ(json_integer_value(json_object_get(bw, "size")), 1024);
	CHECK_EQ(json_integer_value(json_object_get(bw, "refill_time")), 100);
	json_decref(cfg);
	/* A drive may not take the name the entropy device has. */
	CHECK(refused_naming(put(&a, "/drives/entropy",
				 "{\"drive_id\": \"entropy\", \"path_on_host\": \"%s\", "
				 "\"is_root_device\": false}",
				 fs.data),
			     "entropy device"));
	api_free(&a);
	fake_free(&f);
	files_remove(&fs);
}

static void states(void)
{
	struct files fs;
	struct fake f;
	struct api a;
	char before[sizeof(reply)], longargs[2049];

	if (!begin(&a, &f, &fs))
		return;
	CHECK_EQ(req(&a, "GET", "/", NULL), 200);
	CHECK_STR(reply_str("state"), "Not started");
	CHECK_STR(reply_str("id"), "test-vm");
	CHECK(refused_naming(req(&a, "PATCH", "/vm", "{\"state\": \"Paused\"}"), "not running"));
	CHECK(refused_naming(req(&a, "PUT", "/actions", "{\"action_type\": \"Stop\"}"),
			     "not running"));
	CHECK(refused_naming(req(&a, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"),
			     "boot-source"));
	CHECK_EQ(f.pauses + f.stops + f.starts, 0);
	CHECK_EQ(put(&a, "/boot-source",
		     "{\"kernel_image_path\": \"%s\", \"boot_args\": \"quiet\"}", fs.kernel),
		 204);
	/* A command line longer than a kernel keeps (2047 bytes): refused, naming the field. */
	memset(longargs, 'a', sizeof(longargs) - 1);
	longargs[sizeof(longargs) - 1] = '\0';
	CHECK(refused_naming(put(&a, "/boot-source",
				 "{\"kernel_image_path\": \"%s\", \"boot_args\": \"%s\"}",
				 fs.kernel, longargs),
			     "boot_args: 2048 bytes"));

	/* A start that fails: its message, and nothing changed. */
	f.start_ret = -1;
	CHECK(refused_naming(req(&a, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"),
			     "fake: no KVM here"));
	CHECK_EQ(f.starts, 1);
	CHECK(f.m == NULL);
	CHECK_EQ(req(&a, "GET", "/", NULL), 200);
	CHECK_STR(reply_str("state"), "Not started");

	/* The next one starts it. */
	f.start_ret = 0;
	CHECK_EQ(req(&a, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
	CHECK_EQ(f.starts, 2);
	CHECK(f.m != NULL);
	CHECK(f.m && same_str(f.m->cmdline, "quiet"));
	CHECK_EQ(req(&a, "GET", "/", NULL), 200);
	CHECK_STR(reply_str("state"), "Running");
	CHECK(refused_naming(req(&a, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"),
			     "InstanceStart"));
	CHECK_EQ(f.starts, 2);

	/* Pre-boot resources after the start: refused, nothing changes. */
	CHECK_EQ(req(&a, "GET", "/vm/config", NULL), 200);
	snprintf(before, sizeof(before), "%s", reply);
	CHECK(refused_naming(
		put(&a, "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}"),
		"after starting"));
	CHECK(refused_naming(req(&a, "PATCH", "/machine-config", "{\"vcpu_count\": 2}"),
			     "after starting"));
	CHECK(refused_naming(put(&a, "/boot-source", "{\"kernel_image_path\": \"%s\"}", fs.initrd),
			     "after starting"));
	CHECK(refused_naming(put(&a, "/drives/rootfs",
				 "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", "
				 "\"is_root_device\": true}",
				 fs.root),
			     "after starting"));
	CHECK(refused_naming(put(&a, "/network-interfaces/eth0",
				 "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}"),
			     "after starting"));
	CHECK_EQ(req(&a, "GET", "/vm/config", NULL), 200);
	CHECK_STR(reply, before);
	CHECK_EQ(req(&a, "GET", "/", NULL), 200);
	CHECK_STR(reply_str("state"), "Running");

	/* Pause and resume go to the monitor; GET / follows. */
	CHECK_EQ(req(&a, "PATCH", "/vm", "{\"state\": \"Paused\"}"), 204);
	CHECK_EQ(f.pauses, 1);
	CHECK_EQ(req(&a, "GET", "/", NULL), 200);
	CHECK_STR(reply_str("state"), "Paused");
	CHECK_EQ(req(&a, "PATCH", "/vm", "{\"state\": \"Resumed\"}"), 204);
	CHECK_EQ(f.resumes, 1);
	CHECK_EQ(req(&a, "GET", "/", NULL), 200);
	CHECK_STR(reply_str("state"), "Running");
	CHECK(refused_naming(req(&a, "PATCH", "/vm", "{\"state\": \"Stopped\"}"), "state"));
	CHECK(refused_naming(req(&a, "PATCH", "/vm", "{}"), "state"));
	/* A pause the monitor fails: 400 with its reason, still running. */
	f.pause_ret = -EBUSY;
	CHECK(refused_naming(req(&a, "PATCH", "/vm", "{\"state\": \"Paused\"}"), "busy"));
	CHECK_EQ(f.pauses, 2);
	CHECK_EQ(req(&a, "GET", "/", NULL), 200);
	CHECK_STR(reply_str("state"), "Running");
	CHECK_EQ(req(&a, "GET", "/machine", NULL), 200);
	CHECK_EQ(req(&a, "PUT", "/actions", "{\"action_type\": \"Stop\"}"), 204);
	CHECK_EQ(f.stops, 1);
	/* What microvm does not do, said. */
	CHECK(refused_naming(req(&a, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}"),
			     "SendCtrlAltDel"));
	CHECK(refused_naming(req(&a, "PUT", "/balloon", "{}"), "not supported"));
	CHECK(refused_naming(put(&a, "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"v.sock\"}"),
			     "after starting"));
	CHECK(refused_naming(req(&a, "DELETE", "/", NULL), "DELETE"));
	CHECK_EQ(req(&a, "GET", "/version", NULL), 200);
	api_free(&a);
	fake_free(&f);
	files_remove(&fs);
}

/* The last reply's integer field key, or -1. */
static long long reply_int(const char *key)
{
	json_t *j = json_loads(reply, 0, NULL), *v = j ? json_object_get(j, key) : NULL;
	long long n = json_is_integer(v) ? json_integer_value(v) : -1;

	json_decref(j);
	return n;
}

static void balloon(void)
{
	struct files fs;
	struct fake f;
	struct api a;

	if (!begin(&a, &f, &fs))
		return;
	CHECK(refused_naming(req(&a, "PATCH", "/balloon", "{\"amount_mib\": 1}"), "not running"));
	CHECK(refused_naming(req(&a, "GET", "/balloon", NULL), "not running"));
	CHECK(refused_naming(put(&a, "/balloon", "{\"amount_mib\": 64}"), "deflate_on_oom"));
	CHECK(refused_naming(put(&a, "/balloon", "{\"amount_mib\": 64, \"deflate_on_oom\": 1}"),
			     "deflate_on_oom"));
	CHECK(refused_naming(put(&a, "/balloon",
				 "{\"amount_mib\": 64, \"deflate_on_oom\": false, "
				 "\"free_page_hinting\": true}"),
			     "free_page_hinting"));
	/* The machine's checks: more than its RAM, named after the field it came from. */
	CHECK(refused_naming(
		put(&a, "/balloon", "{\"amount_mib\": 99999, \"deflate_on_oom\": false}"),
		"amount_mib"));
	CHECK_EQ(put(&a, "/balloon",
		     "{\"amount_mib\": 64, \"deflate_on_oom\": true, "
		     "\"stats_polling_interval_s\": 1, \"free_page_reporting\": true}"),
		 204);
	CHECK_EQ(put(&a, "/boot-source", "{\"kernel_image_path\": \"%s\"}", fs.kernel), 204);
	CHECK_EQ(req(&a, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
	if (!f.m) {
		CHECK(!"started");
		goto out;
	}
	CHECK_STR(cfg_value(&f.m->cfg, "balloon", "type"), "virtio-balloon");
	CHECK_STR(cfg_value(&f.m->cfg, "balloon", "amount_mib"), "64");
	CHECK(cfg_value_true(&f.m->cfg, "balloon", "deflate_on_oom"));
	CHECK(cfg_value_true(&f.m->cfg, "balloon", "free_page_reporting"));
	CHECK_STR(cfg_value(&f.m->cfg, "balloon", "stats_polling_interval_s"), "1");
	f.bal = (struct balloon_info){.amount_mib = 64,
				      .target_pages = 64 * 256,
				      .actual_pages = 512,
				      .stats_interval_s = 1,
				      .deflate_on_oom = true,
				      .free_page_reporting = true};
	f.bal.stats_seen = 1u << 4 | 1u << 5;
	f.bal.stats[4] = 300 << 20;
	f.bal.stats[5] = 1ll << 30;
	CHECK(refused_naming(put(&a, "/balloon", "{\"amount_mib\": 1, \"deflate_on_oom\": true}"),
			     "after starting"));
	CHECK_EQ(req(&a, "PATCH", "/balloon", "{\"amount_mib\": 256}"), 204);
	CHECK_EQ(f.bal.amount_mib, 256);
	CHECK(refused_naming(req(&a, "PATCH", "/balloon", "{\"amount_mib\": 4096}"), "amount_mib"));
	CHECK(refused_naming(req(&a, "PATCH", "/balloon", "{\"amount_mib\": -1}"), "amount_mib"));
	CHECK(refused_naming(req(&a, "PATCH", "/balloon", "{\"deflate_on_oom\": true}"),
			     "deflate_on_oom"));
	CHECK_EQ(req(&a, "GET", "/balloon", NULL), 200);
	CHECK_EQ(reply_int("amount_mib"), 256);
	CHECK_EQ(reply_int("stats_polling_interval_s"), 1);
	CHECK_EQ(reply_int("actual_mib"), 2);
	CHECK(refused_naming(
		req(&a, "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 0}"),
		"turned off"));
	CHECK_EQ(req(&a, "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 5}"), 204);
	CHECK_EQ(f.bal.stats_interval_s, 5);
	CHECK_EQ(req(&a, "GET", "/balloon/statistics", NULL), 200);
	CHECK_EQ(reply_int("target_pages"), 65536);
	CHECK_EQ(reply_int("target_mib"), 256);
	CHECK_EQ(reply_int("actual_pages"), 512);
	CHECK_EQ(reply_int("free_memory"), 300 << 20);
	CHECK_EQ(reply_int("total_memory"), 1ll << 30);
	CHECK_EQ(reply_int("swap_in"), -1); /* not sent by the driver: left out */
	f.bal.stats_interval_s = 0;
	CHECK(refused_naming(req(&a, "GET", "/balloon/statistics", NULL), "not enabled"));
out:
	api_free(&a);
	fake_free(&f);
	files_remove(&fs);
}

/* ---- the parser ---- */

static const char req_start[] = "PUT /actions HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
				"application/json\r\nContent-Length: 32\r\n\r\n"
				"{\"action_type\": \"InstanceStart\"}";
static const char req_get[] = "GET /machine-config HTTP/1.1\r\nHost: localhost\r\n\r\n";

/* Feed all of text at once: the message's error (0 when it parsed whole). */
static int parse(struct http_msg *m, const char *text, size_t len)
{
	http_msg_init(m);
	http_msg_feed(m, text, len);
	return m->error;
}

static void parser_split(void)
{
	struct http_msg m;
	size_t len = strlen(req_start), taken = 0;

	http_msg_init(&m);
	for (size_t i = 0; i < len; i++) {
		CHECK(!m.complete);
		taken += http_msg_feed(&m, req_start + i, 1);
	}
	CHECK_EQ(taken, len);
	CHECK(m.complete);
	CHECK_EQ(m.error, 0);
	CHECK_STR(http_msg_method(&m), "PUT");
	CHECK_STR(m.url, "/actions");
	CHECK_EQ(m.body_len, 32);
	CHECK(m.body && !strcmp(m.body, "{\"action_type\": \"InstanceStart\"}"));
	CHECK(m.keep_alive);
	/* Complete: it takes nothing more. */
	CHECK_EQ(http_msg_feed(&m, req_get, strlen(req_get)), 0);
	http_msg_free(&m);
}

static void parser_pipelined(void)
{
	char buf[512];
	struct http_msg m;
	size_t n1 = strlen(req_start), n2 = strlen(req_get), n;

	memcpy(buf, req_start, n1);
	memcpy(buf + n1, req_get, n2);
	http_msg_init(&m);
	n = http_msg_feed(&m, buf, n1 + n2);
	CHECK_EQ(n, n1);
	CHECK(m.complete);
	CHECK_STR(m.url, "/actions");
	http_msg_free(&m);
	http_msg_init(&m);
	CHECK_EQ(http_msg_feed(&m, buf + n, n1 + n2 - n), n2);
	CHECK(m.complete);
	CHECK_STR(http_msg_method(&m), "GET");
	CHECK_STR(m.url, "/machine-config");
	CHECK(m.body == NULL);
	http_msg_free(&m);
}

static void parser_bounds(void)
{
	size_t cap = HTTP_HEAD_MAX + 2 * HTTP_BODY_MAX, n;
	char *buf = malloc(cap);
	struct http_msg m;

	if (!buf) {
		CHECK(!"malloc");
		return;
	}
	/* The URL: at the bound it parses, one byte more is 414. */
	for (int extra = 0; extra < 2; extra++) {
		n = (size_t)snprintf(buf, cap, "GET /");
		memset(buf + n, 'a', HTTP_URL_MAX - 1 + extra);
		n += HTTP_URL_MAX - 1 + extra;
		n += (size_t)snprintf(buf + n, cap - n, " HTTP/1.1\r\nHost: x\r\n\r\n");
		CHECK_EQ(parse(&m, buf, n), extra ? 414 : 0);
		CHECK(m.complete == !extra);
		if (!extra)
			CHECK_EQ(m.url_len, HTTP_URL_MAX);
		http_msg_free(&m);
	}
	/* Header lines: HTTP_HEADERS_MAX parse, one more is 431. */
	for (int extra = 0; extra < 2; extra++) {
		n = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\n");
		for (int i = 0; i < HTTP_HEADERS_MAX + extra; i++)
			n += (size_t)snprintf(buf + n, cap - n, "X-H%d: v\r\n", i);
		n += (size_t)snprintf(buf + n, cap - n, "\r\n");
		CHECK_EQ(parse(&m, buf, n), extra ? 431 : 0);
		http_msg_free(&m);
	}
	/* The head's bytes: one long header past HTTP_HEAD_MAX is 431. */
	n = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\nX-Long: ");
	memset(buf + n, 'v', HTTP_HEAD_MAX);
	n += HTTP_HEAD_MAX;
	n += (size_t)snprintf(buf + n, cap - n, "\r\n\r\n");
	CHECK_EQ(parse(&m, buf, n), 431);
	http_msg_free(&m);
	/* A Content-Length past the bound: 413 from the head alone. */
	n = (size_t)snprintf(buf, cap, "PUT /actions HTTP/1.1\r\nContent-Length: %d\r\n\r\n",
			     HTTP_BODY_MAX + 1);
	CHECK_EQ(parse(&m, buf, n), 413);
	CHECK(m.body == NULL);
	http_msg_free(&m);
	/* At the bound it is taken. */
	n = (size_t)snprintf(buf, cap, "PUT /actions HTTP/1.1\r\nContent-Length: %d\r\n\r\n",
			     HTTP_BODY_MAX);
	memset(buf + n, ' ', HTTP_BODY_MAX);
	n += HTTP_BODY_MAX;
	CHECK_EQ(parse(&m, buf, n), 0);
	CHECK(m.complete);
	CHECK_EQ(m.body_len, HTTP_BODY_MAX);
	http_msg_free(&m);
	/* Chunked, no length up front: 413 once the chunks pass the bound. */
	n = (size_t)snprintf(buf, cap,
			     "PUT /actions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 5; i++) {
		n += (size_t)snprintf(buf + n, cap - n, "%x\r\n", 16 << 10);
		memset(buf + n, ' ', 16 << 10);
		n += 16 << 10;
		n += (size_t)snprintf(buf + n, cap - n, "\r\n");
	}
	n += (size_t)snprintf(buf + n, cap - n, "0\r\n\r\n");
	CHECK_EQ(parse(&m, buf, n), 413);
	CHECK(!m.complete);
	http_msg_free(&m);
	/* Chunked within the bound parses. */
	n = (size_t)snprintf(buf, cap,
			     "PUT /actions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
			     "3\r\n{\"a\r\n4\r\n\": 1\r\n1\r\n}\r\n0\r\n\r\n");
	CHECK_EQ(parse(&m, buf, n), 0);
	CHECK(m.complete && m.body && !strcmp(m.body, "{\"a\": 1}"));
	http_msg_free(&m);
	/* Garbage, and a request line with no method. */
	CHECK_EQ(parse(&m, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), 400);
	http_msg_free(&m);
	CHECK_EQ(parse(&m, "hello world\r\n\r\n", 15), 400);
	http_msg_free(&m);
	CHECK_EQ(parse(&m, "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 37), 400);
	http_msg_free(&m);
	free(buf);
}

static void parser_keep_alive(void)
{
	static const char close_req[] = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
	static const char old_req[] = "GET / HTTP/1.0\r\n\r\n";
	static const char old_keep[] = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
	struct http_msg m;

	CHECK_EQ(parse(&m, req_get, strlen(req_get)), 0);
	CHECK(m.complete && m.keep_alive);
	http_msg_free(&m);
	CHECK_EQ(parse(&m, close_req, strlen(close_req)), 0);
	CHECK(m.complete && !m.keep_alive);
	http_msg_free(&m);
	CHECK_EQ(parse(&m, old_req, strlen(old_req)), 0);
	CHECK(m.complete && !m.keep_alive);
	http_msg_free(&m);
	CHECK_EQ(parse(&m, old_keep, strlen(old_keep)), 0);
	CHECK(m.complete && m.keep_alive);
	http_msg_free(&m);
}

/* ---- the server ---- */

struct server {
	char dir[32], path[64];
	struct loop loop;
	struct http_server s;
	struct api api;
	struct fake f;
};

static bool server_open(struct server *sv)
{
	snprintf(sv->dir, sizeof(sv->dir), "/tmp/mvsock-XXXXXX");
	if (!mkdtemp(sv->dir))
		return false;
	snprintf(sv->path, sizeof(sv->path), "%s/api.sock", sv->dir);
	if (!api_new(&sv->api, &sv->f) || loop_init(&sv->loop))
		return false;
	if (http_server_open(&sv->s, sv->path, getuid(), getgid(), api_handle, &sv->api))
		return false;
	return http_server_attach(&sv->s, &sv->loop) == 0;
}

static void server_close(struct server *sv)
{
	struct stat st;

	http_server_close(&sv->s);
	CHECK(lstat(sv->path, &st) < 0); /* its file goes with it */
	loop_free(&sv->loop);
	api_free(&sv->api);
	rmdir(sv->dir);
}

static int client(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1;
}

static bool send_str(int fd, const char *s)
{
	return write(fd, s, strlen(s)) == (ssize_t)strlen(s);
}

/* Read what came (one reply, written at once); true when it has status. */
static bool got_status(int fd, int status)
{
	char buf[4096], want[32];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);

	if (n <= 0)
		return false;
	buf[n] = '\0';
	snprintf(want, sizeof(want), "HTTP/1.1 %d ", status);
	return !strncmp(buf, want, strlen(want));
}

/* The peer closed: readable, and nothing to read. */
static bool at_eof(int fd)
{
	char c;

	return readable(fd) && read(fd, &c, 1) == 0;
}

static void server_basics(void)
{
	struct server sv;
	struct stat st;
	int fd, half;

	if (!server_open(&sv)) {
		CHECK(!"server_open");
		return;
	}
	CHECK(lstat(sv.path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0600);

	/* A request gets its reply; the connection stays for the next. */
	fd = client(sv.path);
	CHECK(fd >= 0 && send_str(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
	CHECK(TEST_WAIT(readable(fd), loop_poll(&sv.loop, 100)));
	CHECK(got_status(fd, 200));
	CHECK(send_str(fd,
		       "PATCH /vm HTTP/1.1\r\nContent-Length: 19\r\n\r\n{\"state\": \"Paused\"}"));
	CHECK(TEST_WAIT(readable(fd), loop_poll(&sv.loop, 100)));
	CHECK(got_status(fd, 400));
	/* A refused request closes the connection after its answer. */
	CHECK(send_str(fd, "NONSENSE\r\n\r\n"));
	CHECK(TEST_WAIT(readable(fd), loop_poll(&sv.loop, 100)));
	CHECK(got_status(fd, 400));
	CHECK(TEST_WAIT(at_eof(fd), loop_poll(&sv.loop, 100)));
	close(fd);

	/* Half a request, then gone: nothing acted on, the next client is served. */
	half = client(sv.path);
	CHECK(half >= 0 &&
	      send_str(half, "PUT /actions HTTP/1.1\r\nContent-Length: 31\r\n\r\n{\"ac"));
	CHECK(TEST_WAIT(sv.s.nconns == 1, loop_poll(&sv.loop, 100)));
	close(half);
	CHECK(TEST_WAIT(sv.s.nconns == 0, loop_poll(&sv.loop, 100)));
	fd = client(sv.path);
	CHECK(fd >= 0 && send_str(fd, "GET /machine-config HTTP/1.1\r\nConnection: close\r\n\r\n"));
	CHECK(TEST_WAIT(readable(fd), loop_poll(&sv.loop, 100)));
	CHECK(got_status(fd, 200));
	CHECK(TEST_WAIT(at_eof(fd), loop_poll(&sv.loop, 100)));
	close(fd);
	CHECK_EQ(sv.f.starts, 0);
	CHECK_EQ(sv.s.refused, 0);
	server_close(&sv);
}

/*
 * Past HTTP_CONNS_MAX a new client takes the place of the oldest idle connection (idle ones
 * cannot keep everybody out); while every connection has a request under way it waits in
 * the backlog, and is served once one of them is done.
 */
static void server_conns_max(void)
{
	enum { N = HTTP_CONNS_MAX + 2 };
	struct server sv;
	int fds[N], answered = 0, evicted = 0, extra;

	if (!server_open(&sv)) {
		CHECK(!"server_open");
		return;
	}
	for (int i = 0; i < N; i++) {
		fds[i] = client(sv.path);
		CHECK(fds[i] >= 0 && send_str(fds[i], "GET / HTTP/1.1\r\n\r\n"));
	}
	/* Every one is answered: the last two by evicting two that were answered and idle. */
	CHECK(TEST_WAIT(({
				answered = 0;
				for (int i = 0; i < N; i++)
					answered += readable(fds[i]);
				answered == N;
			}),
			loop_poll(&sv.loop, 100)));
	for (int i = 0; i < N; i++)
		CHECK(got_status(fds[i], 200));
	loop_poll(&sv.loop, 0);
	CHECK_EQ(sv.s.nconns, HTTP_CONNS_MAX);
	for (int i = 0; i < N; i++)
		evicted += at_eof(fds[i]);
	CHECK_EQ(evicted, 2);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	CHECK(TEST_WAIT(sv.s.nconns == 0, loop_poll(&sv.loop, 100)));

	/* All busy (half a request each): the next client waits, nobody is evicted. */
	for (int i = 0; i < HTTP_CONNS_MAX; i++) {
		fds[i] = client(sv.path);
		CHECK(fds[i] >= 0 && send_str(fds[i], "GET / HTTP/1.1\r\n"));
	}
	CHECK(TEST_WAIT(sv.s.nconns == HTTP_CONNS_MAX, loop_poll(&sv.loop, 100)));
	while (loop_poll(&sv.loop, 0) > 0) /* every half request read: all of them busy */
		;
	extra = client(sv.path);
	CHECK(extra >= 0 && send_str(extra, "GET / HTTP/1.1\r\n\r\n"));
	for (int i = 0; i < 5; i++)
		loop_poll(&sv.loop, 0);
	CHECK(!readable(extra));
	for (int i = 0; i < HTTP_CONNS_MAX; i++)
		CHECK(!readable(fds[i]));
	/* One finishes its request: answered, idle, then it makes room for the waiting one. */
	CHECK(send_str(fds[0], "\r\n"));
	CHECK(TEST_WAIT(readable(extra), loop_poll(&sv.loop, 100)));
	CHECK(got_status(extra, 200));
	CHECK(got_status(fds[0], 200));
	CHECK(TEST_WAIT(at_eof(fds[0]), loop_poll(&sv.loop, 100)));
	close(extra);
	for (int i = 0; i < HTTP_CONNS_MAX; i++)
		close(fds[i]);
	CHECK(TEST_WAIT(sv.s.nconns == 0, loop_poll(&sv.loop, 100)));
	server_close(&sv);
}

/* A request begun and not finished within the deadline loses its connection. */
static void server_deadline(void)
{
	struct server sv;
	int slow, fd;

	if (!server_open(&sv)) {
		CHECK(!"server_open");
		return;
	}
	sv.s.timeout_ms = 20;
	slow = client(sv.path);
	CHECK(slow >= 0 && send_str(slow, "GET / HTTP/1.1\r\nHo"));
	CHECK(TEST_WAIT(at_eof(slow), loop_poll(&sv.loop, 100)));
	CHECK_EQ(sv.s.timed_out, 1);
	close(slow);
	/* A prompt client is served as before. */
	fd = client(sv.path);
	CHECK(fd >= 0 && send_str(fd, "GET / HTTP/1.1\r\n\r\n"));
	CHECK(TEST_WAIT(readable(fd), loop_poll(&sv.loop, 100)));
	CHECK(got_status(fd, 200));
	close(fd);
	server_close(&sv);
}

/* network_overrides a load refuses, and what it says. */
static const char *const bad_overrides[][2] = {
	{"{\"iface_id\": \"eth0\", \"guest_mac\": \"zz\"}",
	 "network_overrides[0]: guest_mac 'zz': not a unicast MAC address"},
	{"{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}, {\"iface_id\": \"eth1\", "
	 "\"host_dev_name\": \"tap1\", \"guest_mac\": \"01:00:5e:00:00:01\"}",
	 "network_overrides[1]: guest_mac '01:00:5e:00:00:01': not a unicast"},
	{"{\"iface_id\": \"eth0\", \"guest_mac\": \"02:00:00:00:00:01 \"}",
	 "guest_mac '02:00:00:00:00:01 ': not a unicast"},
	{"{\"iface_id\": \"eth0\", \"guest_mac\": \"02:00:00:00:00:01\\u0001\"}",
	 "network_overrides[0]: guest_mac: not a unicast"},
	{"{\"iface_id\": \"eth0\", \"guest_mac\": 2}", "network_overrides[0]: needs iface_id"},
	{"{\"iface_id\": \"eth0\", \"guest_mac\": null}", "network_overrides[0]: needs iface_id"},
	{"{\"iface_id\": \"eth0\", \"guest_mac\": \"02:00:00:00:00:01\", \"vhost\": true}",
	 "and nothing else"},
};

/* PUT /snapshot/create on a paused VM only; /snapshot/load on an empty instance only. */
static void snapshots(void)
{
	struct files fs;
	struct fake f;
	struct api a;

	if (!begin(&a, &f, &fs))
		return;
	CHECK(refused_naming(
		put(&a, "/snapshot/create", "{\"snapshot_path\": \"s\", \"mem_file_path\": \"m\"}"),
		"paused"));
	/* load: the memory file one way or the other, File only, full snapshots only. */
	CHECK(refused_naming(put(&a, "/snapshot/load", "{\"snapshot_path\": \"s\"}"),
			     "mem_backend"));
	CHECK(refused_naming(put(&a, "/snapshot/load",
				 "{\"snapshot_path\": \"s\", \"mem_backend\": {\"backend_type\": "
				 "\"Uffd\", \"backend_path\": \"/u.sock\"}}"),
			     "backend_type"));
	CHECK(refused_naming(put(&a, "/snapshot/load",
				 "{\"snapshot_path\": \"s\", \"mem_file_path\": \"m\", "
				 "\"enable_diff_snapshots\": true}"),
			     "full snapshots"));
	CHECK(refused_naming(put(&a, "/snapshot/load",
				 "{\"snapshot_path\": \"s\", \"mem_file_path\": \"m\", "
				 "\"network_overrides\": [{\"iface_id\": \"eth0\"}]}"),
			     "network_overrides[0]"));
	/* guest_mac (microvm's): a unicast MAC address, a string, checked before any load. */
	for (size_t i = 0; i < sizeof(bad_overrides) / sizeof(bad_overrides[0]); i++)
		CHECK(refused_naming(put(&a, "/snapshot/load",
					 "{\"snapshot_path\": \"s\", \"mem_file_path\": \"m\", "
					 "\"network_overrides\": [%s]}",
					 bad_overrides[i][0]),
				     bad_overrides[i][1]));
	CHECK(refused_naming(put(&a, "/snapshot/load",
				 "{\"snapshot_path\": \"fail.state\", \"mem_file_path\": \"m\"}"),
			     "fake: fail.state is damaged"));
	CHECK_EQ(f.loads, 1);
	CHECK_EQ(req(&a, "GET", "/", NULL), 200);
	CHECK_STR(reply_str("state"), "Not started");
	/* Not after anything was configured: the snapshot holds the whole machine. */
	CHECK_EQ(put(&a, "/boot-source", "{\"kernel_image_path\": \"%s\"}", fs.kernel), 204);
	CHECK(refused_naming(
		put(&a, "/snapshot/load", "{\"snapshot_path\": \"s\", \"mem_file_path\": \"m\"}"),
		"nothing was configured"));
	CHECK_EQ(f.loads, 1);
	api_free(&a);
	fake_free(&f);

	/* A load into an empty instance: paused unless resume_vm, overrides passed on. */
	if (!api_new(&a, &f)) {
		CHECK(!"api_init");
		return;
	}
	CHECK_EQ(
		put(&a, "/snapshot/load",
		    "{\"snapshot_path\": \"/s/vm.state\", \"mem_backend\": {\"backend_type\": "
		    "\"File\", \"backend_path\": \"/s/vm.mem\"}, \"network_overrides\": "
		    "[{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap7\"}, {\"iface_id\": "
		    "\"eth1\", \"host_dev_name\": \"tap8\", \"guest_mac\": \"02:00:00:00:00:08\"}, "
		    "{\"guest_mac\": \"AA:FC:00:00:00:01\", \"iface_id\": \"eth2\"}]}"),
		204);
	CHECK_STR(f.state, "/s/vm.state");
	CHECK_STR(f.mem, "/s/vm.mem");
	CHECK_STR(f.ov, "eth0.tap=tap7 eth1.tap=tap8 eth1.mac=02:00:00:00:00:08 "
			"eth2.mac=AA:FC:00:00:00:01");
	CHECK(!f.resume);
	CHECK_EQ(req(&a, "GET", "/", NULL), 200);
	CHECK_STR(reply_str("state"), "Paused");
	CHECK(refused_naming(
		put(&a, "/snapshot/load", "{\"snapshot_path\": \"s\", \"mem_file_path\": \"m\"}"),
		"started already"));
	/* create: on the paused VM; its failure's message; Diff refused. */
	CHECK(refused_naming(put(&a, "/snapshot/create",
				 "{\"snapshot_type\": \"Diff\", \"snapshot_path\": \"s\", "
				 "\"mem_file_path\": \"m\"}"),
			     "snapshot_type"));
	CHECK(refused_naming(put(&a, "/snapshot/create", "{\"snapshot_path\": \"s\"}"),
			     "mem_file_path: required"));
	CHECK(refused_naming(put(&a, "/snapshot/create",
				 "{\"snapshot_path\": \"fail.state\", \"mem_file_path\": \"m\"}"),
			     "fake: cannot write fail.state"));
	CHECK_EQ(put(&a, "/snapshot/create",
		     "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"vm2.state\", "
		     "\"mem_file_path\": \"vm2.mem\"}"),
		 204);
	CHECK_STR(f.state, "vm2.state");
	CHECK_EQ(f.snapshots, 2);
	CHECK_EQ(req(&a, "PATCH", "/vm", "{\"state\": \"Resumed\"}"), 204);
	CHECK(refused_naming(
		put(&a, "/snapshot/create", "{\"snapshot_path\": \"s\", \"mem_file_path\": \"m\"}"),
		"paused"));
	CHECK_EQ(f.snapshots, 2);
	api_free(&a);
	fake_free(&f);
	files_remove(&fs);
}

/* PUT /vsock: Firecracker's body becomes the [vsock0] section; bad values are refused. */
static void vsock_resource(void)
{
	struct files fs;
	struct fake f;
	struct machine m;
	struct api a;

	files_make(&fs);
	if (!api_new(&a, &f)) {
		CHECK(!"api_init");
		return;
	}
	CHECK_EQ(put(&a, "/vsock",
		     "{\"vsock_id\": \"vsock0\", \"guest_cid\": 3, \"uds_path\": \"%s/v.sock\"}",
		     fs.dir),
		 204);
	CHECK(refused_naming(put(&a, "/vsock", "{\"guest_cid\": 2, \"uds_path\": \"v.sock\"}"),
			     "guest CID"));
	CHECK(refused_naming(put(&a, "/vsock",
				 "{\"guest_cid\": 4294967295, \"uds_path\": "
				 "\"v.sock\"}"),
			     "guest_cid"));
	CHECK(refused_naming(put(&a, "/vsock", "{\"guest_cid\": 5}"), "uds_path"));
	CHECK(refused_naming(put(&a, "/vsock", "{\"guest_cid\": \"5\", \"uds_path\": \"v\"}"),
			     "guest_cid"));
	CHECK(refused_naming(put(&a, "/vsock",
				 "{\"guest_cid\": 5, \"uds_path\": \"v\", "
				 "\"port\": 1}"),
			     "port"));
	CHECK(refused_naming(req(&a, "PATCH", "/vsock", "{\"guest_cid\": 5}"), "PUT it again"));
	/* The refusals left the first one in place. */
	CHECK_EQ(api_machine(&a, &m), 0);
	CHECK(device_index(&m, "vsock0") >= 0);
	CHECK(same_str(cfg_value(&m.cfg, "vsock0", "type"), "virtio-vsock"));
	CHECK(same_str(cfg_value(&m.cfg, "vsock0", "cid"), "3"));
	machine_free(&m);
	/* A second PUT replaces it. */
	CHECK_EQ(put(&a, "/vsock", "{\"guest_cid\": 42, \"uds_path\": \"%s/w.sock\"}", fs.dir),
		 204);
	CHECK_EQ(api_machine(&a, &m), 0);
	CHECK(same_str(cfg_value(&m.cfg, "vsock0", "cid"), "42"));
	machine_free(&m);
	api_free(&a);
	fake_free(&f);
	files_remove(&fs);
}

void test_api(void)
{
	TEST_RUN(json_equals_ini);
	TEST_RUN(refused_fields);
	TEST_RUN(failed_put_keeps_previous);
	TEST_RUN(states);
	TEST_RUN(entropy);
	TEST_RUN(vsock_resource);
	TEST_RUN(balloon);
	TEST_RUN(snapshots);
	TEST_RUN(parser_split);
	TEST_RUN(parser_pipelined);
	TEST_RUN(parser_bounds);
	TEST_RUN(parser_keep_alive);
	TEST_RUN(server_basics);
	TEST_RUN(server_conns_max);
	TEST_RUN(server_deadline);
}
