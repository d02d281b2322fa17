/* snapshot: save a paused VM to a state file and a memory file; restore one in a new process. */
#include "snapshot/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arch.h"
#include "device.h"
#include "kvm_arch.h"
#include "log.h"
#include "machine.h"
#include "snapshot/snapfile.h"
#include "timeline.h"
#include "vm.h"

/*
 * [machine] keys that choose the host side: left out of the saved description and set on a
 * restore from its own command line only (a state file may come from anywhere).
 */
static const char *const host_keys[] = {"user",	    "seccomp",	    "seccomp_deny",
					"api_sock", "snapshot_dir", NULL};

/* A device's section: dev.NAME (apart from the sections of the VM's own). */
static void dev_section(const struct device *dev, char *buf, size_t len)
{
	snprintf(buf, len, "dev.%s", dev->name);
}

bool snapshot_valid_name(const char *name)
{
	return name && *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..") &&
	       strlen(name) < 200;
}

/* All zero? (The first word, then the page against itself shifted by one word.) */
static bool zero(const uint8_t *p, size_t len)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return !w && !memcmp(p, p + sizeof(w), len - sizeof(w));
}

/* Write guest RAM to fd: runs of non-zero pages at their offsets; zero pages stay holes. */
static int write_ram(const struct vm *vm, int fd, uint64_t *written)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t at = 0, size = vm->ram_size;

	*written = 0;
	if (ftruncate(fd, (off_t)size) < 0)
		return -errno;
	while (at < size) {
		uint64_t end;

		if (zero(vm->ram + at, page)) {
			at += page;
			continue;
		}
		/* A run of data pages, at most 64 MiB a write. */
		for (end = at + page; end < size && end - at < (64u << 20); end += page)
			if (zero(vm->ram + end, page))
				break;
		for (uint64_t off = at; off < end;) {
			ssize_t n = pwrite(fd, vm->ram + off, end - off, (off_t)off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return n < 0 ? -errno : -EIO;
			off += (uint64_t)n;
		}
		*written += end - at;
		at = end;
	}
	return 0;
}

/* What write_ram needs, for snap_write_file. */
struct ram_file {
	const struct vm *vm;
	uint64_t *written;
};

static int fill_ram(int fd, void *arg)
{
	const struct ram_file *r = arg;

	return write_ram(r->vm, fd, r->written);
}

/* The memory file: written as the state file is (a temporary name, synced, renamed). */
static int save_ram(const struct vm *vm, int dirfd, const char *name, uint64_t *written)
{
	struct ram_file r = {vm, written};

	return snap_write_file(dirfd, name, fill_ram, &r);
}

/*
 * The dumped description must read back: config.c's reader takes lines of at most 198
 * characters (inih's 200-byte buffer), and a command line from the API or a path made
 * absolute can be longer. (No file is read: this runs after lock-down.)
 */
static int check_dump(const char *text)
{
	for (const char *l = text; *l;) {
		size_t n = strcspn(l, "\n");

		if (n > 198) {
			log_error("snapshot: the machine description has a line of %zu characters "
				  "(%.40s...), more than a machine file may have (198); nothing "
				  "saved",
				  n, l);
			return -EINVAL;
		}
		l += n + (l[n] == '\n');
	}
	return 0;
}

/* The machine description, as INI text that loads the same from anywhere. */
static int save_machine(const struct vm *vm, struct snap *s, const char *mem)
{
	const struct machine *m = vm->m;
	struct snap_sec *sec = snap_add(s, "snapshot");
	struct snap_sec *ms = snap_add(s, "machine");
	char *text = NULL, pin[128];
	size_t len = 0;
	FILE *f;
	int err;

	if (!sec || !ms)
		return -ENOMEM;
	err = snap_put_u64(sec, "state_version", SNAPSHOT_STATE_VERSION);
	err = err ?: snap_put_text(sec, "arch", m->arch->name);
	err = err ?: snap_put_text(sec, "microvm_version", MICROVM_VERSION);
	err = err ?: snap_put_u64(sec, "page_size", (uint64_t)sysconf(_SC_PAGESIZE));
	err = err ?: snap_put_u64(sec, "ram_size", vm->ram_size);
	err = err ?: snap_put_u64(sec, "vcpus", vm->nvcpus);
	err = err ?: snap_put_u64(sec, "created", (uint64_t)time(NULL));
	err = err ?: snap_put_text(sec, "mem_file", mem);
	if (err)
		return err;
	f = open_memstream(&text, &len);
	if (!f)
		return -ENOMEM;
	err = cfg_dump(&m->cfg, f, "machine", host_keys);
	if (fclose(f) || !text)
		err = -1;
	if (err) {
		log_error("snapshot: the machine description cannot be written as INI (a value "
			  "with ';', '#' or surrounding spaces)");
		free(text);
		return -EINVAL;
	}
	err = snap_put_text(ms, "ini", text) ?: check_dump(text);
	free(text);
	if (!err && m->arch->snapshot_pin && m->arch->snapshot_pin(m, pin, sizeof(pin)))
		err = snap_put_text(ms, "pin", pin);
	return err;
}

int snapshot_save(struct vm *vm, int dirfd, const char *state, const char *mem,
		  struct snapshot_stats *st)
{
	uint64_t start = timeline_clock_ns();
	char name[SNAP_NAME_MAX + 8];
	struct snap *s;
	int err;

	memset(st, 0, sizeof(*st));
	if (!vm_paused(vm))
		return -EBUSY;
	s = snap_new();
	if (!s)
		return -ENOMEM;
	err = save_machine(vm, s, mem);
	/* The interrupt controller may write its tables into guest RAM: before RAM is saved. */
	err = err ?: kvm_arch_save(vm, s);
	for (size_t i = 0; !err && i < vm->m->ndevices; i++) {
		struct device *dev = &vm->m->devices[i];
		struct snap_sec *sec;

		if (!dev->ops->save)
			continue;
		dev_section(dev, name, sizeof(name));
		sec = snap_add(s, name);
		err = sec ? dev->ops->save(dev, sec) : -ENOMEM;
		if (err)
			log_error("%s: cannot save its state: %s", dev->name, strerror(-err));
	}
	st->ram_bytes = vm->ram_size;
	/* An old state of this name must not be left beside the new memory file. */
	if (!err && unlinkat(dirfd, state, 0) < 0 && errno != ENOENT) {
		err = -errno;
		log_error("snapshot: cannot replace %s: %s", state, strerror(errno));
	}
	err = err ?: save_ram(vm, dirfd, mem, &st->written_bytes);
	if (!err) {
		err = snap_write(s, dirfd, state);
		if (err)
			unlinkat(dirfd, mem, 0);
	}
	snap_free(s);
	st->save_ns = timeline_clock_ns() - start;
	if (!err)
		log_info("snapshot %s + %s: %llu of %llu MiB of RAM written in %.1f ms", state, mem,
			 (unsigned long long)(st->written_bytes >> 20),
			 (unsigned long long)(st->ram_bytes >> 20), st->save_ns / 1e6);
	return err;
}

/* The memory file the state names, in the state file's directory. */
static char *beside(const char *state_path, const char *name)
{
	char *tmp = strdup(state_path), *out = NULL;

	if (tmp && asprintf(&out, "%s/%s", dirname(tmp), name) < 0)
		out = NULL;
	free(tmp);
	return out;
}

static int check_host(struct snapshot_in *in, const struct snap_sec *sec)
{
	const char *arch, *mem;
	uint64_t v, page = (uint64_t)sysconf(_SC_PAGESIZE);

	if (snap_need_u64(sec, "state_version", UINT32_MAX, &v))
		return -EINVAL;
	if (v != SNAPSHOT_STATE_VERSION) {
		log_error("snapshot %s: state version %llu; this microvm restores version %d",
			  in->state_path, (unsigned long long)v, SNAPSHOT_STATE_VERSION);
		return -EINVAL;
	}
	if (snap_get_text(sec, "arch", &arch) || snap_get_text(sec, "mem_file", &mem)) {
		log_error("snapshot %s: section 'snapshot' lacks 'arch' or 'mem_file'",
			  in->state_path);
		return -EINVAL;
	}
	if (!kvm_guest_arch || strcmp(arch, kvm_guest_arch->name)) {
		log_error("snapshot %s: a snapshot of an %s machine; this host runs %s guests",
			  in->state_path, arch, kvm_guest_arch ? kvm_guest_arch->name : "no");
		return -ENOTSUP;
	}
	if (snap_need_u64(sec, "page_size", UINT32_MAX, &v))
		return -EINVAL;
	if (v != page) {
		log_error(
			"snapshot %s: taken on a host with %llu KiB pages; this host has %llu KiB",
			in->state_path, (unsigned long long)v >> 10,
			(unsigned long long)page >> 10);
		return -ENOTSUP;
	}
	if (snap_need_u64(sec, "ram_size", UINT64_MAX, &in->ram_size))
		return -EINVAL;
	if (!in->mem_path) {
		if (!snapshot_valid_name(mem)) {
			log_error("snapshot %s: memory file name '%s' is not a plain file name",
				  in->state_path, mem);
			return -EINVAL;
		}
		in->mem_path = beside(in->state_path, mem);
		if (!in->mem_path)
			return -ENOMEM;
	}
	return 0;
}

int snapshot_open(struct snapshot_in *in, const char *state_path, const char *mem_path)
{
	struct stat st;
	int err;

	memset(in, 0, sizeof(*in));
	in->mem_fd = -1;
	in->state_path = strdup(state_path);
	in->mem_path = mem_path ? strdup(mem_path) : NULL;
	if (!in->state_path || (mem_path && !in->mem_path))
		return -ENOMEM;
	err = snap_read(AT_FDCWD, state_path, &in->state);
	if (err)
		return err;
	if (!snap_need(in->state, "snapshot"))
		return -EINVAL;
	err = check_host(in, snap_find(in->state, "snapshot"));
	if (err)
		return err;
	/* (not waiting on a FIFO, not a terminal: a regular file is checked next) */
	in->mem_fd = open(in->mem_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (in->mem_fd < 0 || fstat(in->mem_fd, &st) < 0) {
		err = -errno;
		log_error("snapshot memory file %s: %s", in->mem_path, strerror(errno));
		return err;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != in->ram_size) {
		log_error("snapshot memory file %s: %s %llu bytes; the snapshot's RAM is %llu",
			  in->mem_path, S_ISREG(st.st_mode) ? "is" : "is no regular file of",
			  (unsigned long long)st.st_size, (unsigned long long)in->ram_size);
		return -EINVAL;
	}
	timeline_mark(TL_STATE_READ);
	log_info("snapshot state read at %.1f ms", timeline_now() * 1e3);
	return 0;
}

/* Is key (len bytes) in the NULL-terminated list keys (which may be NULL)? */
static bool listed(const char *const *keys, const char *key, size_t len)
{
	for (; keys && *keys; keys++)
		if (strlen(*keys) == len && !strncmp(key, *keys, len))
			return true;
	return false;
}

/* "a, b or c" (or "none") from a NULL-terminated list into buf. */
static const char *spell(const char *const *keys, char *buf, size_t len)
{
	size_t n = 0, at = 0;

	while (keys && keys[n])
		n++;
	buf[0] = '\0';
	for (size_t i = 0; i < n && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%s",
				       i ? i + 1 < n ? ", " : " or " : "", keys[i]);
	return n ? buf : "none";
}

/* The overrides a restore is given (the saved pin is not one of them). */
struct restore_ov {
	const struct machine_override *ov;
	size_t nov;
};

/*
 * The overrides arg (a struct restore_ov), checked against the saved description c before
 * any is applied: each may set only a key its section's type lists as one a restore may set
 * (device_ops.restore_keys: a disk's path, a NIC's TAP or MAC...) or a host-side [machine]
 * key. The guest has seen anything else. 0, or -1 (said).
 */
static int check_restore_ov(const struct cfg *c, void *arg)
{
	const struct restore_ov *r = arg;

	for (size_t i = 0; i < r->nov; i++) {
		const char *set = r->ov[i].arg, *dot = strchr(set, '.'), *eq = strchr(set, '=');
		const char *const *may = NULL, *type;
		char sec[128], keys[160], what[200];

		if (!dot || !eq || eq < dot || (size_t)(dot - set) >= sizeof(sec)) {
			log_error("%s %s: expected SECTION.KEY=VALUE", r->ov[i].origin, set);
			return -1;
		}
		memcpy(sec, set, (size_t)(dot - set));
		sec[dot - set] = '\0';
		type = strcmp(sec, "machine") ? cfg_value(c, sec, "type") : NULL;
		if (!strcmp(sec, "machine"))
			may = host_keys;
		else if (type && device_type(type))
			may = device_type(type)->restore_keys;
		if (listed(may, dot + 1, (size_t)(eq - dot - 1)))
			continue;
		if (!cfg_section(c, sec)) {
			log_error("%s %s: the snapshot's machine has no [%s] (a restore cannot add "
				  "a device)",
				  r->ov[i].origin, set, sec);
			return -1;
		}
		snprintf(what, sizeof(what), "[%s]%s%s%s", sec, type ? " (a " : "",
			 type ? type : "", type ? ")" : "");
		log_error("%s %s: a restore cannot change this (the guest has seen it); of %s it "
			  "may set %s",
			  r->ov[i].origin, set, what, spell(may, keys, sizeof(keys)));
		return -1;
	}
	return 0;
}

/*
 * A saved pin is applied as an override: only the key the architecture pins (arm64:
 * gic.version), with a number, may come from a state file; anything else could set the host
 * side (seccomp, user, api_sock) or a device the guest saw.
 */
static bool pin_valid(const char *pin)
{
	const char *key = kvm_guest_arch ? kvm_guest_arch->snapshot_pin_key : NULL;
	size_t n = key ? strlen(key) : 0;

	if (!key || strncmp(pin, key, n) || pin[n] != '=')
		return false;
	pin += n + 1;
	return *pin && strlen(pin) <= 3 && strspn(pin, "0123456789") == strlen(pin);
}

int snapshot_machine(struct snapshot_in *in, const struct machine_override *ov, size_t nov,
		     struct machine *m)
{
	const struct snap_sec *ms = snap_need(in->state, "machine");
	struct restore_ov check = {ov, nov};
	struct machine_override *all;
	struct machine_src src = {.check = check_restore_ov, .check_arg = &check};
	const char *pin = NULL;
	char name[4200];
	uint64_t vcpus;
	int err;

	memset(m, 0, sizeof(*m));
	if (!ms || snap_get_text(ms, "ini", &src.text)) {
		log_error("snapshot %s: no machine description", in->state_path);
		return -EINVAL;
	}
	all = calloc(nov + 1, sizeof(*all));
	if (!all)
		return -ENOMEM;
	snap_get_text(ms, "pin", &pin);
	if (pin && !pin_valid(pin)) {
		log_error("snapshot %s: its machine's pin is not one this architecture makes (a "
			  "file not written by microvm?)",
			  in->state_path);
		free(all);
		return -EINVAL;
	}
	if (pin)
		all[src.nov++] = (struct machine_override){.arg = pin, .origin = "snapshot"};
	for (size_t i = 0; i < nov; i++)
		all[src.nov++] = ov[i];
	src.ov = all;
	snprintf(name, sizeof(name), "snapshot %s (its machine)", in->state_path);
	src.path = name;
	err = machine_load_src(m, &src, true);
	free(all);
	if (err)
		return err;
	/* (from the saved text: a line number; the command line's overrides have none) */
	for (const char *const *k = host_keys; *k; k++) {
		const struct cfg_entry *e = cfg_get(&m->cfg, "machine", *k);

		if (e && e->line) {
			log_error("snapshot %s: its machine sets [machine] %s, which a restore "
				  "takes from its own command line only (a file not written by "
				  "microvm?)",
				  in->state_path, *k);
			return -EINVAL;
		}
	}
	if (m->arch != kvm_guest_arch) {
		log_error("snapshot %s: its machine is an %s one, the state one of this host's "
			  "architecture (damaged)",
			  in->state_path, m->arch->name);
		return -EINVAL;
	}
	if (snap_need_u64(snap_find(in->state, "snapshot"), "vcpus", 1024, &vcpus))
		return -EINVAL;
	if (m->ram_size != in->ram_size || m->vcpus != vcpus) {
		log_error("snapshot %s: its machine has %llu MiB and %u vCPUs, the state %llu MiB "
			  "and %llu (damaged)",
			  in->state_path, (unsigned long long)(m->ram_size >> 20), m->vcpus,
			  (unsigned long long)(in->ram_size >> 20), (unsigned long long)vcpus);
		return -EINVAL;
	}
	return 0;
}

int snapshot_restore(struct snapshot_in *in, struct vm *vm)
{
	int err = kvm_arch_restore(vm, in->state);

	for (size_t i = 0; !err && i < vm->m->ndevices; i++) {
		struct device *dev = &vm->m->devices[i];
		char name[SNAP_NAME_MAX + 8];
		const struct snap_sec *sec;

		dev_section(dev, name, sizeof(name));
		sec = snap_find(in->state, name);

		if (!dev->ops->restore) {
			if (sec) {
				log_error("snapshot %s: state for %s, which keeps none (another "
					  "machine?)",
					  in->state_path, dev->name);
				err = -EINVAL;
			}
			continue;
		}
		if (!sec) {
			log_error("snapshot %s: no state for %s", in->state_path, dev->name);
			err = -EINVAL;
			break;
		}
		err = dev->ops->restore(dev, sec);
	}
	if (!err) {
		timeline_mark(TL_STATE_RESTORED);
		log_info("state restored at %.1f ms", timeline_now() * 1e3);
	} else {
		log_error("snapshot %s: refused (above); nothing runs", in->state_path);
	}
	return err;
}

void snapshot_close(struct snapshot_in *in)
{
	snap_free(in->state);
	in->state = NULL;
	if (in->mem_fd >= 0)
		close(in->mem_fd);
	in->mem_fd = -1;
	free(in->state_path);
	free(in->mem_path);
	in->state_path = in->mem_path = NULL;
}
