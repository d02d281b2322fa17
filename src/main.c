/* main: the microvm command line: validate, describe, dump the device tree, or run a machine. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "api/api.h"
#include "api/ctl.h"
#include "api/http.h"
#include "boot.h"
#include "arch.h"
#include "catalog.h"
#include "device.h"
#include "kvm_arch.h"
#include "layout.h"
#include "log.h"
#include "machine.h"
#include "sandbox.h"
#include "shorthand.h"
#include "snapshot/snapshot.h"
#include "term.h"
#include "timeline.h"
#include "virtio/balloon.h"
#include "vm.h"

#ifndef MICROVM_VERSION
#error "MICROVM_VERSION comes from the VERSION file (see the Makefile)"
#endif

static const char usage[] =
	"usage: microvm --config FILE|NAME [options]\n"
	"       microvm --kernel IMAGE [options]                  (the default machine)\n"
	"       microvm --api-sock PATH | --name NAME [options]   (configured over the API)\n"
	"       microvm --restore STATE [--mem-file FILE] [options]\n"
	"       microvm --list-machines\n"
	"       microvm ctl VM COMMAND [ARGS]                     (microvm ctl help)\n"
	"\n"
	"  -c, --config FILE|NAME   machine description (INI), e.g. machines/rpi5.ini or rpi5:\n"
	"                           a FILE that exists is read; a NAME (no '/', no .ini) is\n"
	"                           NAME.ini in PREFIX/share/microvm/machines, else in the\n"
	"                           machines/ of the checkout whose build/ holds microvm\n"
	"                           (-c is not kvmtool's CPU count: that is --cpus)\n"
	"      --list-machines      print the machines found by name (name, path, comment)\n"
	"      --api-sock PATH      serve Firecracker's REST API on a Unix socket at PATH;\n"
	"                           without --config, wait there for InstanceStart\n"
	"  -n, --name NAME          the VM's name; its API socket is in the runtime\n"
	"                           directory (microvm ctl NAME ...) unless --api-sock says\n"
	"  -s, --set SEC.KEY=VALUE  override a key of the file (repeatable)\n"
	"      --cpus N             vCPUs (same as --set machine.vcpus=N)\n"
	"      --memory SIZE        RAM, e.g. 2G (same as --set memory.size=SIZE)\n"
	"      --disk PATH[,ro][,transport=mmio|pci]\n"
	"                           add a virtio-blk disk, section blkN after the others\n"
	"                           (repeatable)\n"
	"      --net [TAP][,mac=MAC][,transport=mmio|pci][,vhost=on]\n"
	"                           add a virtio-net NIC on TAP, section netN (repeatable)\n"
	"  -k, --kernel PATH        kernel Image (same as --set boot.kernel=PATH)\n"
	"  -i, --initrd PATH        initramfs (same as --set boot.initrd=PATH)\n"
	"  -a, --append ARGS        append ARGS to the [boot] cmdline (repeatable: each after\n"
	"                           the one before, with a space)\n"
	"  -u, --user NAME          run as NAME once set up (same as --set machine.user=NAME)\n"
	"      --restore STATE      run the VM saved in snapshot STATE (PUT /snapshot/create)\n"
	"      --mem-file FILE      its memory file (default: the one STATE names, beside it)\n"
	"      --paused             with --restore: stay paused until the API resumes it\n"
	"      --snapshot-dir DIR   where the API may write snapshots (default: the socket's\n"
	"                           directory; same as --set machine.snapshot_dir=DIR)\n"
	"      --check              validate everything a run would (boot files, disk images,\n"
	"                           output paths; no KVM), print the resolved machine, exit\n"
	"      --json               with --check: print it as JSON\n"
	"      --list-keys          print every SECTION.KEY the machine's sections accept\n"
	"      --list-values SEC.KEY\n"
	"                           print the words the key takes (an enum's, on/off)\n"
	"      --dump-dtb PATH      write the generated device tree to PATH and exit (arm64;\n"
	"                           no kernel needed; with --check: validated as for a run)\n"
	"      --dump-acpi DIR      write the ACPI tables to DIR/SIG.dat and exit (x86_64;\n"
	"                           DIR is created if its parent exists)\n"
	"  -v, --verbose            report start-up phases, timing and memory use\n"
	"      --boot-report FILE   write the boot timeline, exits and memory use as JSON\n"
	"  -h, --help               this text\n"
	"  -V, --version            print the version\n"
	"\n"
	"Without --config, --api-sock, --name or --restore, --kernel IMAGE (and --check,\n"
	"--list-keys, --list-values, --dump-dtb, --dump-acpi) use this host's default machine,\n"
	"the one --api-sock starts from: 1 vCPU, 128 MiB, a UART, virtio-mmio and PCI; on\n"
	"arm64 its GIC version is auto, so it fits a Raspberry Pi 5 (GICv2) and GICv3 servers\n"
	"alike. --cpus and --memory size it.\n"
	"\n"
	"An option with a value may be given once, but for --append and the overrides (--set,\n"
	"the shorthands, -k, -i, -u, --snapshot-dir: the last one for a key wins); an output\n"
	"path that cannot be written is a usage error.\n"
	"Exit status: 0 guest powered off, 1 run-time failure, 2 usage or configuration\n"
	"error, 3 guest rebooted (on_reboot = exit), 4 stopped from the host (signal, Ctrl-A x,\n"
	"the API's Stop).\n"
	"On a terminal, Ctrl-A x quits and Ctrl-A Ctrl-A sends Ctrl-A to the guest.\n";

struct options {
	const char *config, *dump_dtb, *dump_acpi, *boot_report, *api_sock, *name;
	const char *restore, *mem_file, *list_values;
	char *append;		     /* every --append, in order, joined by spaces */
	struct machine_override *ov; /* --set and its shorthands, in command-line order */
	size_t nov;
	char **owned; /* the strings ov points to */
	size_t nowned;
	int check, list_keys, paused, json, list_machines;
	bool builtin; /* no --config: the default machine */
};

/* Keep s (allocated) until the options are freed; s. */
static char *own(struct options *o, char *s)
{
	char **v = s ? realloc(o->owned, (o->nowned + 1) * sizeof(*v)) : NULL;

	if (!v) {
		free(s);
		return NULL;
	}
	o->owned = v;
	o->owned[o->nowned++] = s;
	return s;
}

static void free_options(struct options *o)
{
	for (size_t i = 0; i < o->nowned; i++)
		free(o->owned[i]);
	free(o->owned);
	free(o->ov);
	free(o->append);
}

static int add_override(struct options *o, struct machine_override ov)
{
	struct machine_override *v = realloc(o->ov, (o->nov + 1) * sizeof(*v));

	if (!v)
		return -1;
	o->ov = v;
	o->ov[o->nov++] = ov;
	return 0;
}

static char *dup_set(const char *key, const char *val)
{
	size_t n = strlen(key) + strlen(val) + 2;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s=%s", key, val);
	return s;
}

static int add_set(struct options *o, char *s)
{
	if (!own(o, s))
		return -1;
	return add_override(o, (struct machine_override){.arg = s, .origin = "--set"});
}

/* --cpus, --memory, --disk, --net: what each stands for, in order among the --set ones. */
static int add_shorthand(struct options *o, const char *name, const char *arg)
{
	struct machine_override ov;
	size_t n = strlen(name) + 3; /* "--NAME " */
	char why[200], *mem;

	if (shorthand_override(name, arg, &ov, &mem, why, sizeof(why))) {
		fprintf(stderr, "microvm: --%s %s: %s\n", name, arg, why);
		free(mem);
		return -1;
	}
	/* --cpus and --memory set one key each: a second one is a slip, not an override. */
	for (size_t i = 0; !ov.apply && i < o->nov; i++)
		if (!strncmp(o->ov[i].origin, ov.origin, n)) {
			fprintf(stderr, "microvm: %s, then %s: --%s is given twice\n",
				o->ov[i].origin, ov.origin, name);
			free(mem);
			return -1;
		}
	return own(o, mem) ? add_override(o, ov) : -1;
}

/* The default machine: this host's architecture's (arm64 where KVM runs none). */
static const struct arch *default_arch(void)
{
	return kvm_guest_arch ? kvm_guest_arch : &arch_arm64;
}

/*
 * Without --config, --api-sock, --name or --restore: --kernel and the modes that only look
 * at a machine use the default machine.
 */
static bool wants_default(const struct options *o)
{
	if (o->config || o->api_sock || o->name || o->restore)
		return false;
	if (o->check || o->list_keys || o->list_values || o->dump_dtb || o->dump_acpi)
		return true;
	for (size_t i = 0; i < o->nov; i++)
		if (!o->ov[i].apply && !strncmp(o->ov[i].arg, "boot.kernel=", 12) &&
		    o->ov[i].arg[12])
			return true;
	return false;
}

/*
 * What the shorthands and the query options go with: a shorthand needs a machine of a file
 * or the default one (not a snapshot's, not the API's), --json needs --check,
 * --list-machines stands alone, --list-values names a SECTION.KEY. 0, or -1 (said).
 */
static int query_and_shorthand_rules(const struct options *o, int argc)
{
	const char *sh = NULL;

	for (size_t i = 0; i < o->nov && !sh; i++)
		if (strcmp(o->ov[i].origin, "--set"))
			sh = o->ov[i].origin;
	if (sh && o->restore) {
		fprintf(stderr, "microvm: %s: --restore runs the machine the snapshot holds\n", sh);
		return -1;
	}
	if (sh && !o->config && !o->builtin && (o->api_sock || o->name)) {
		fprintf(stderr,
			"microvm: %s: over the API, PUT /machine-config, /drives and "
			"/network-interfaces describe the machine\n",
			sh);
		return -1;
	}
	if (o->json && !o->check) {
		fprintf(stderr, "microvm: --json goes with --check\n");
		return -1;
	}
	if (o->list_machines && argc > 2) {
		fprintf(stderr, "microvm: --list-machines takes no other option\n");
		return -1;
	}
	if (o->list_values && !strchr(o->list_values, '.')) {
		fprintf(stderr, "microvm: --list-values %s: expected SECTION.KEY\n",
			o->list_values);
		return -1;
	}
	return 0;
}

/* An option that takes one value: given twice, it is a conflict (said), not an override. */
static int once(const char **slot, const char *opt, const char *arg)
{
	if (*slot) {
		fprintf(stderr, "microvm: %s may be given once (%s, then %s)\n", opt, *slot, arg);
		return -1;
	}
	*slot = arg;
	return 0;
}

/* Another --append: after the ones before it, with a space. */
static int add_append(struct options *o, const char *arg)
{
	size_t n = o->append ? strlen(o->append) : 0;
	char *s = realloc(o->append, n + strlen(arg) + 2);

	if (!s)
		return -1;
	snprintf(s + n, strlen(arg) + 2, "%s%s", n ? " " : "", arg);
	o->append = s;
	return 0;
}

/* Options that cannot go together: said, -1. */
static int conflicts(const struct options *o)
{
	const char *what = NULL;

	if ((o->list_keys || o->list_values) && (o->check || o->dump_dtb || o->dump_acpi))
		what = "--list-keys and --list-values print keys and words only: not with --check "
		       "or --dump-*";
	else if (o->dump_dtb && o->dump_acpi)
		what = "a machine has a device tree (arm64) or ACPI tables (x86_64): give one of "
		       "--dump-dtb and --dump-acpi";
	else if (o->boot_report && (o->list_keys || o->list_values || o->dump_dtb || o->dump_acpi))
		what = "--boot-report describes a run: not with --list-keys, --list-values or "
		       "--dump-*";
	if (what)
		fprintf(stderr, "microvm: %s\n", what);
	return what ? -1 : 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	enum {
		OPT_CHECK = 256,
		OPT_LIST_KEYS,
		OPT_DUMP_DTB,
		OPT_DUMP_ACPI,
		OPT_BOOT_REPORT,
		OPT_API_SOCK,
		OPT_RESTORE,
		OPT_MEM_FILE,
		OPT_PAUSED,
		OPT_SNAPSHOT_DIR,
		OPT_SHORTHAND,
		OPT_JSON,
		OPT_LIST_MACHINES,
		OPT_LIST_VALUES
	};
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"set", required_argument, NULL, 's'},
		{"kernel", required_argument, NULL, 'k'},
		{"initrd", required_argument, NULL, 'i'},
		{"append", required_argument, NULL, 'a'},
		{"user", required_argument, NULL, 'u'},
		{"check", no_argument, NULL, OPT_CHECK},
		{"list-keys", no_argument, NULL, OPT_LIST_KEYS},
		{"dump-dtb", required_argument, NULL, OPT_DUMP_DTB},
		{"dump-acpi", required_argument, NULL, OPT_DUMP_ACPI},
		{"boot-report", required_argument, NULL, OPT_BOOT_REPORT},
		{"api-sock", required_argument, NULL, OPT_API_SOCK},
		{"name", required_argument, NULL, 'n'},
		{"restore", required_argument, NULL, OPT_RESTORE},
		{"mem-file", required_argument, NULL, OPT_MEM_FILE},
		{"paused", no_argument, NULL, OPT_PAUSED},
		{"snapshot-dir", required_argument, NULL, OPT_SNAPSHOT_DIR},
		{"cpus", required_argument, NULL, OPT_SHORTHAND},
		{"memory", required_argument, NULL, OPT_SHORTHAND},
		{"disk", required_argument, NULL, OPT_SHORTHAND},
		{"net", required_argument, NULL, OPT_SHORTHAND},
		{"json", no_argument, NULL, OPT_JSON},
		{"list-machines", no_argument, NULL, OPT_LIST_MACHINES},
		{"list-values", required_argument, NULL, OPT_LIST_VALUES},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	int c, idx = 0, err = 0;

	while (!err && (c = getopt_long(argc, argv, "c:s:k:i:a:u:n:vhV", longopts, &idx)) != -1) {
		switch (c) {
		case 'c':
			err = once(&o->config, "--config", optarg);
			break;
		case 's':
			add_set(o, strdup(optarg));
			break;
		case 'k':
			add_set(o, dup_set("boot.kernel", optarg));
			break;
		case 'i':
			add_set(o, dup_set("boot.initrd", optarg));
			break;
		case 'a':
			err = add_append(o, optarg);
			break;
		case 'u':
			add_set(o, dup_set("machine.user", optarg));
			break;
		case OPT_CHECK:
			o->check = 1;
			break;
		case OPT_LIST_KEYS:
			o->list_keys = 1;
			break;
		case OPT_DUMP_ACPI:
			err = once(&o->dump_acpi, "--dump-acpi", optarg);
			break;
		case OPT_DUMP_DTB:
			err = once(&o->dump_dtb, "--dump-dtb", optarg);
			break;
		case OPT_BOOT_REPORT:
			err = once(&o->boot_report, "--boot-report", optarg);
			break;
		case OPT_API_SOCK:
			err = once(&o->api_sock, "--api-sock", optarg);
			break;
		case 'n':
			err = once(&o->name, "--name", optarg);
			break;
		case OPT_RESTORE:
			err = once(&o->restore, "--restore", optarg);
			break;
		case OPT_MEM_FILE:
			err = once(&o->mem_file, "--mem-file", optarg);
			break;
		case OPT_PAUSED:
			o->paused = 1;
			break;
		case OPT_SNAPSHOT_DIR:
			add_set(o, dup_set("machine.snapshot_dir", optarg));
			break;
		case OPT_SHORTHAND:
			if (add_shorthand(o, longopts[idx].name, optarg))
				return -1;
			break;
		case OPT_JSON:
			o->json = 1;
			break;
		case OPT_LIST_MACHINES:
			o->list_machines = 1;
			break;
		case OPT_LIST_VALUES:
			err = once(&o->list_values, "--list-values", optarg);
			break;
		case 'v':
			log_set_verbose(1);
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		case 'V':
			printf("microvm %s\n", MICROVM_VERSION);
			exit(0);
		default:
			fputs(usage, stderr);
			return -1;
		}
	}
	if (err)
		return -1;
	if (optind < argc) {
		fprintf(stderr, "microvm: unexpected argument '%s'\n%s", argv[optind], usage);
		return -1;
	}
	o->builtin = wants_default(o);
	if (query_and_shorthand_rules(o, argc))
		return -1;
	if (o->list_machines)
		return 0;
	if (!o->config && !o->builtin && !o->api_sock && !o->name && !o->restore) {
		fprintf(stderr,
			"microvm: --config FILE|NAME, --kernel IMAGE, --restore STATE or "
			"--api-sock "
			"PATH is required\n%s",
			usage);
		return -1;
	}
	if (o->restore &&
	    (o->config || o->append || o->check || o->list_keys || o->dump_dtb || o->dump_acpi)) {
		fprintf(stderr, "microvm: --restore runs the machine the snapshot holds: no "
				"--config, --append, --check, --list-keys or --dump-*\n");
		return -1;
	}
	if ((o->mem_file || o->paused) && !o->restore) {
		fprintf(stderr, "microvm: --mem-file and --paused go with --restore\n");
		return -1;
	}
	if (!o->config && !o->builtin &&
	    (o->check || o->list_keys || o->dump_dtb || o->dump_acpi)) {
		fprintf(stderr, "microvm: --check, --list-keys and --dump-* need --config FILE\n");
		return -1;
	}
	if (o->name && !api_valid_name(o->name)) {
		fprintf(stderr,
			"microvm: --name %s: 1 to 64 letters, digits, '-', '_' or '.', "
			"not starting with '.'\n",
			o->name);
		return -1;
	}
	return conflicts(o);
}

/*
 * An output path, checked before anything starts: an existing file (or device) that may be
 * written, or a new one in a writable directory; with dir, a directory, or a new one whose
 * parent exists and is writable (it is created when written). 0, or -1 (said).
 */
static int output_ok(const char *opt, const char *path, bool dir)
{
	struct stat st;
	char *tmp, *parent;
	int err = -1;

	if (!*path) {
		log_error("%s: an empty path", opt);
		return -1;
	}
	if (!stat(path, &st)) {
		if (dir != S_ISDIR(st.st_mode))
			log_error("%s %s: %s", opt, path, dir ? "not a directory" : "a directory");
		else if (access(path, dir ? W_OK | X_OK : W_OK))
			log_error("%s %s: %s", opt, path, strerror(errno));
		else
			err = 0;
		return err;
	}
	if (errno != ENOENT) {
		log_error("%s %s: %s", opt, path, strerror(errno));
		return -1;
	}
	tmp = strdup(path);
	parent = tmp ? dirname(tmp) : ".";
	if (stat(parent, &st) || !S_ISDIR(st.st_mode))
		log_error("%s %s: there is no directory %s to create it in", opt, path, parent);
	else if (access(parent, W_OK | X_OK))
		log_error("%s %s: cannot create it in %s: %s", opt, path, parent, strerror(errno));
	else
		err = 0;
	free(tmp);
	return err;
}

/* Every output path the options name, checked as output_ok does. 0, or -1 (said). */
static int outputs_ok(const struct options *o)
{
	int err = 0;

	if (o->dump_dtb)
		err |= output_ok("--dump-dtb", o->dump_dtb, false);
	if (o->dump_acpi)
		err |= output_ok("--dump-acpi", o->dump_acpi, true);
	if (o->boot_report)
		err |= output_ok("--boot-report", o->boot_report, false);
	return err;
}

/*
 * A file written whole or not at all: a regular file (or a new one) is written beside its
 * place and renamed into it by output_commit; anything else (a device, a pipe, a symbolic
 * link) is written where it is.
 */
struct output {
	const char *path;
	char *tmp; /* the file written beside path, or NULL */
};

static void output_discard(struct output *out)
{
	if (out->tmp)
		unlink(out->tmp);
	free(out->tmp);
	out->tmp = NULL;
}

/* Write len bytes of buf for path. 0, or -1 (said, nothing left of it). */
static int output_write(struct output *out, const char *path, const void *buf, size_t len)
{
	struct stat st;
	bool written = false;
	FILE *f = NULL;
	int fd = -1;

	out->path = path;
	out->tmp = NULL;
	if (lstat(path, &st) || S_ISREG(st.st_mode)) {
		if (asprintf(&out->tmp, "%s.%d.tmp", path, (int)getpid()) < 0)
			out->tmp = NULL;
		else
			fd = open(out->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	} else {
		fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
	}
	if (fd >= 0 && !(f = fdopen(fd, "w")))
		close(fd);
	if (f) {
		written = fwrite(buf, 1, len, f) == len;
		written = !fclose(f) && written;
	}
	if (!written) {
		log_error("%s: %s", path, strerror(errno));
		output_discard(out);
		return -1;
	}
	return 0;
}

/* Put the file written for out in its place. 0, or -1 (said, nothing left of it). */
static int output_commit(struct output *out)
{
	int err = 0;

	if (out->tmp && rename(out->tmp, out->path)) {
		log_error("%s: %s", out->path, strerror(errno));
		err = -1;
	}
	output_discard(out);
	return err;
}

/*
 * Resident memory: the whole process, and the guest RAM mapping's share of it (KiB), from
 * /proc/self/smaps opened before the sandbox (it is read once, at exit).
 */
static void measure_memory(FILE *f, const struct vm *vm, long long *total, long long *guest)
{
	char line[512], name[256] = "", perms[8] = "";
	unsigned long long kb;
	bool in_ram = false;

	*total = *guest = -1;
	if (!f)
		return;
	*total = *guest = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end;
		int at = 0;

		if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %n", &start, &end, perms, &at) == 3) {
			in_ram = start == (uintptr_t)vm->ram;
			snprintf(name, sizeof(name), "%s", at ? line + at : "");
			name[strcspn(name, "\n")] = 0;
			continue;
		}
		if (sscanf(line, "Rss: %llu kB", &kb) == 1) {
			*total += (long long)kb;
			if (in_ram)
				*guest += (long long)kb;
			else if (kb >= 64) /* where the monitor's own memory is (--verbose) */
				log_info("  %llu KiB resident in %s %s", kb, perms,
					 name[0] ? name : "(anonymous)");
		}
	}
}

/* --boot-report: the timeline, exits and memory of this run as JSON. */
static void write_boot_report(FILE *f, const char *path, const struct machine *m,
			      const struct vm *vm, int status, long long rss, long long guest_rss)
{
	struct boot_report r = {
		.machine = m->name,
		.vcpus = m->vcpus,
		.memory_mib = m->ram_size >> 20,
		.exit_status = status,
		.exits = atomic_load(&vm->exits),
		.mmio_exits = atomic_load(&vm->mmio_exits),
		.rss_kib = rss,
		.guest_rss_kib = guest_rss,
	};

	if (timeline_write_json(f, &r) < 0 || fclose(f) != 0)
		log_error("--boot-report %s: %s", path, strerror(errno));
}

static int sigfd = -1;

static void on_sigfd(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	struct signalfd_siginfo si;

	(void)events;
	if (read(sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	fprintf(stderr, "\r\nmicrovm: stopped by signal %u\r\n", si.ssi_signo);
	vm_stop(vm, VM_STOPPED);
}

/* --dump-acpi: every ACPI table of info, DIR/SIG.dat each, all or none (DIR is created). */
static int write_acpi(const struct boot_info *info, const char *dir)
{
	struct output out[BOOT_CHUNKS_MAX];
	char *path[BOOT_CHUNKS_MAX];
	bool made = !mkdir(dir, 0777);
	unsigned n = 0;
	int err = made || errno == EEXIST ? 0 : -1;

	if (err)
		log_error("--dump-acpi %s: %s", dir, strerror(errno));
	for (unsigned i = 0; !err && i < info->n; i++) {
		const struct boot_chunk *c = &info->chunk[i];

		if (strncmp(c->name, "acpi/", 5))
			continue;
		if (asprintf(&path[n], "%s/%s.dat", dir, c->name + 5) < 0) {
			log_error("--dump-acpi %s: out of memory", dir);
			err = -1;
		} else if (output_write(&out[n], path[n], c->data, c->len)) {
			free(path[n]);
			err = -1;
		} else {
			n++;
		}
	}
	/* Every table written: each takes its place; else none does. */
	for (unsigned i = 0; i < n; i++) {
		if (err)
			output_discard(&out[i]);
		else
			err = output_commit(&out[i]);
		free(path[i]);
	}
	if (err && made)
		rmdir(dir);
	return err;
}

/* --dump-dtb: the device tree of info, at path. */
static int write_dtb(const struct boot_info *info, const char *path)
{
	const struct boot_chunk *dtb = boot_info_find(info, "dtb");
	struct output out;

	if (!dtb) {
		log_error("--dump-dtb: no device tree was built");
		return -1;
	}
	return output_write(&out, path, dtb->data, dtb->len) ?: output_commit(&out);
}

/* "FILE: N errors, nothing started" after the errors of m's configuration. */
static void said_errors(const struct machine *m, const char *path)
{
	fprintf(stderr, "microvm: %s: %d error%s, nothing started\n", path, m->cfg.nerrors,
		m->cfg.nerrors == 1 ? "" : "s");
}

/*
 * --check, --dump-dtb, --dump-acpi: the boot files checked as a run would (--check; a dump
 * needs no kernel), the dump written, then (--check) the machine printed. The exit status.
 */
static int offline(struct machine *m, const struct options *o)
{
	const char *dump = o->dump_dtb ? o->dump_dtb : o->dump_acpi;
	enum arch_boot_info kind = o->dump_dtb ? ARCH_DTB : ARCH_ACPI;
	struct boot_images bi = {.kernel.fd = -1, .initrd.fd = -1};
	struct boot_info info = {0};
	int status = 0;

	if (dump && m->arch->boot_info_kind != kind) {
		log_error("%s: an %s machine has no %s (%s)", m->cfg.path, m->arch->name,
			  kind == ARCH_DTB ? "device tree" : "ACPI tables",
			  m->arch->boot_info_hint);
		return VM_USAGE;
	}
	if (dump && m->arch->boot_info_ready && m->arch->boot_info_ready(m))
		return VM_USAGE;
	/* The ACPI tables do not depend on the boot files: only --check reads them then. */
	if ((o->check || o->dump_dtb) && boot_prepare(m, &bi, o->check ? BOOT_RUN : BOOT_DUMP)) {
		said_errors(m, o->config ? o->config : "default machine");
		return VM_USAGE;
	}
	if (dump && m->arch->boot_info(m, &bi.layout, &info)) {
		log_error("%s: cannot build the boot information", m->cfg.path);
		status = VM_USAGE;
	} else if (dump) {
		/* Its path was checked before: a failure now is the system's (a full disk). */
		status = (kind == ARCH_DTB ? write_dtb(&info, dump) : write_acpi(&info, dump))
				 ? VM_FAILURE
				 : 0;
	}
	boot_info_free(&info);
	boot_free(&bi);
	if (!status && o->check && o->json)
		status = layout_print_json(m, stdout) ? VM_FAILURE : 0;
	else if (!status && o->check)
		machine_print(m, stdout);
	return status;
}

/* --append: the [boot] cmdline, a space and args, within the kernel's limit. 0 or -1 (said). */
static int append_cmdline(struct machine *m, const char *args, char **cmdline)
{
	size_t n = strlen(m->cmdline), len = n + !!n + strlen(args);

	if (len >= BOOT_CMDLINE_MAX) {
		log_error(
			"--append: the kernel command line would be %zu bytes ([boot] cmdline %zu, "
			"--append %zu), more than the %d a kernel keeps",
			len, n, strlen(args), BOOT_CMDLINE_MAX - 1);
		return -1;
	}
	if (asprintf(cmdline, "%s%s%s", m->cmdline, n ? " " : "", args) < 0) {
		*cmdline = NULL;
		return -1;
	}
	m->cmdline = *cmdline;
	return 0;
}

/* One VM's run: built by session_start, run and torn down by session_run. */
struct session {
	struct machine *m;
	const char *report_path;
	FILE *report, *smaps;
	char report_buf[BUFSIZ], smaps_buf[BUFSIZ]; /* theirs, given before lock-down */
	struct vm vm;
	sigset_t stops;
	struct http_server *api_srv; /* --api-sock: served from the VM's loop while it runs */
	struct api api;
	struct loop *preboot;	  /* the loop the API serves from until InstanceStart */
	bool started;		  /* InstanceStart built the VM */
	struct snapshot_in *snap; /* a restore: the snapshot the VM is built from */
	bool resume;		  /* a restore: run at once (else paused until the API resumes) */
	const char *sock;	  /* the API socket, whose directory holds snapshots by default */
	int snap_dirfd;		  /* the snapshot directory (with an API), else -1 */
	char *snap_dir;		  /* its path */
	bool refused;		  /* a restore refused the snapshot's state (exit status 2) */
};

static int session_end(struct session *s, int status);

static void stops_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/*
 * With an API: the directory snapshots go to ([machine] snapshot_dir, else the socket's),
 * opened now; after lock-down files are created only in it. 0 or -1 (said).
 */
static int open_snapshot_dir(struct session *s)
{
	char *tmp = NULL;

	s->snap_dirfd = -1;
	if (!s->api_srv)
		return 0;
	if (s->m->snapshot_dir)
		s->snap_dir = strdup(s->m->snapshot_dir);
	else if (s->sock && (tmp = strdup(s->sock)))
		s->snap_dir = strdup(dirname(tmp));
	free(tmp);
	if (!s->snap_dir)
		return 0;
	/* "DIR/" names the same directory as "DIR": the API's paths are compared with it. */
	for (size_t n = strlen(s->snap_dir); n > 1 && s->snap_dir[n - 1] == '/'; n--)
		s->snap_dir[n - 1] = '\0';
	s->snap_dirfd = open(s->snap_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->snap_dirfd < 0) {
		log_error("snapshot directory %s: %s", s->snap_dir, strerror(errno));
		return -1;
	}
	return 0;
}

static void close_snapshot_dir(struct session *s)
{
	if (s->snap_dirfd >= 0)
		close(s->snap_dirfd);
	s->snap_dirfd = -1;
	free(s->snap_dir);
	s->snap_dir = NULL;
}

/* The guest's start: kernel, initrd and their description loaded, or the snapshot restored. */
static int session_boot(struct session *s, struct boot_images *bi)
{
	struct boot_info info = {0};
	int err;

	if (s->snap) {
		err = snapshot_restore(s->snap, &s->vm);
		s->refused = err != 0;
		if (!err && !s->resume)
			vm_start_paused(&s->vm);
		return err;
	}
	/* The guest's description is built last, once the irqchip version is known. */
	err = s->m->arch->boot_info(s->m, &bi->layout, &info);
	if (!err) {
		err = vm_load(&s->vm, bi, &info);
		if (!err) {
			timeline_mark(TL_IMAGES_LOADED);
			log_info("kernel, initrd and boot information loaded at %.1f ms",
				 timeline_now() * 1e3);
		}
	}
	boot_info_free(&info);
	return err;
}

/*
 * Everything up to a VM ready to run: boot files, sandbox filters, the VM, the guest's
 * description in its RAM (or a snapshot's state). On failure nothing is left (status
 * returned); 0 when ready.
 */
static int session_start(struct session *s)
{
	struct machine *m = s->m;
	struct boot_images bi = {.kernel.fd = -1, .initrd.fd = -1};
	int err;

	/* An unwritable report path stops here, before anything is started. */
	if (s->report_path && !(s->report = fopen(s->report_path, "we"))) {
		log_error("--boot-report %s: %s", s->report_path, strerror(errno));
		return VM_USAGE;
	}
	if (s->report)
		sandbox_stream(s->report, s->report_buf, sizeof(s->report_buf));
	if (vm_host_check(m)) {
		err = VM_FAILURE;
		goto close_report;
	}
	if (!s->snap) {
		if (boot_prepare(m, &bi, BOOT_RUN)) {
			err = VM_USAGE;
			goto close_report;
		}
		timeline_mark(TL_BOOT_FILES_READ);
		log_info("boot files opened, headers read at %.1f ms", timeline_now() * 1e3);
	}
	if (open_snapshot_dir(s)) {
		boot_free(&bi);
		err = VM_USAGE;
		goto close_report;
	}
	m->sandbox.snapshots = s->snap_dirfd >= 0;
	m->sandbox.snapshot_dirfd = s->snap_dirfd;
	stops_block(&s->stops);
	if (s->api_srv) {
		/* The API's connections are the descriptors opened after set-up. */
		m->sandbox.api = true;
		m->sandbox.spare_fds += HTTP_CONNS_MAX + 2;
	}
	if (sandbox_prepare(&m->sandbox)) {
		boot_free(&bi);
		close_snapshot_dir(s);
		err = VM_FAILURE;
		goto close_report;
	}
	if (s->report || log_verbose())
		s->smaps = fopen("/proc/self/smaps", "re");
	if (s->smaps)
		sandbox_stream(s->smaps, s->smaps_buf, sizeof(s->smaps_buf));
	err = s->snap ? vm_create_restored(&s->vm, m, s->snap->mem_fd) : vm_create(&s->vm, m);
	if (!err && sigfd < 0) {
		sigfd = signalfd(-1, &s->stops, SFD_CLOEXEC | SFD_NONBLOCK);
		err = sigfd < 0 ? -errno : 0;
	}
	err = err ?: loop_add(&s->vm.loop, sigfd, EPOLLIN, on_sigfd, &s->vm);
	err = err ?: session_boot(s, &bi);
	boot_free(&bi);
	if (!err)
		return 0;
	session_end(s, VM_FAILURE);
	/* A state the restore refused is bad input, found before any vCPU ran. */
	return s->refused ? VM_USAGE : VM_FAILURE;
close_report:
	if (s->report)
		fclose(s->report);
	s->report = NULL;
	return err;
}

/* Run the VM session_start built until it stops; tear it down; its status. */
static int session_run(struct session *s)
{
	return session_end(s, vm_run(&s->vm));
}

/* The VM stopped with status (or was never run): its report, then nothing of it is left. */
static int session_end(struct session *s, int status)
{
	struct machine *m = s->m;
	long long rss = -1, guest_rss = -1;

	timeline_mark(TL_EXIT);
	if (s->api_srv && s->api_srv->loop == &s->vm.loop)
		http_server_detach(s->api_srv);
	if (s->smaps && s->vm.ram) {
		measure_memory(s->smaps, &s->vm, &rss, &guest_rss);
		log_info("RSS %lld KiB: guest RAM %lld KiB, monitor %lld KiB", rss, guest_rss,
			 rss - guest_rss);
	}
	if (s->smaps)
		fclose(s->smaps);
	s->smaps = NULL;
	if (s->report)
		write_boot_report(s->report, s->report_path, m, &s->vm, status, rss, guest_rss);
	s->report = NULL;
	vm_destroy(&s->vm);
	close_snapshot_dir(s);
	term_restore();
	if (status == VM_REBOOT && m->on_reboot == REBOOT_EXIT)
		fprintf(stderr, "microvm: guest rebooted (on_reboot = exit)\n");
	return status;
}

/* The API's view of the running VM. */
static int api_pause(void *opaque)
{
	return vm_pause(&((struct session *)opaque)->vm);
}

static int api_resume(void *opaque)
{
	return vm_resume(&((struct session *)opaque)->vm);
}

static void api_stop(void *opaque)
{
	vm_stop(&((struct session *)opaque)->vm, VM_STOPPED);
}

/* The API's balloon requests, on the event loop's thread (the device takes its lock). */
static int api_balloon(void *opaque, enum api_balloon_op op, uint32_t value,
		       struct balloon_info *info)
{
	struct session *s = opaque;
	struct device *dev = NULL;
	int err = 0;

	for (size_t i = 0; s->m && i < s->m->ndevices; i++)
		if (s->m->devices[i].ops == &virtio_balloon_ops)
			dev = &s->m->devices[i];
	if (!dev)
		return -ENODEV;
	if (op == API_BALLOON_TARGET)
		err = balloon_set_target(dev, value);
	else if (op == API_BALLOON_INTERVAL)
		err = balloon_set_interval(dev, value);
	return err ?: balloon_get_info(dev, info);
}

/*
 * A snapshot file the API names: a plain name, or a path in the snapshot directory (as
 * given, or through the same directory as the socket's). The name in it, or NULL (said).
 */
static const char *snapshot_name(const struct session *s, const char *path, const char *what)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	size_t dlen = slash ? (size_t)(slash - path) : 0;
	struct stat st;

	if (s->snap_dirfd < 0) {
		log_error("%s: no snapshot directory (--snapshot-dir)", what);
		return NULL;
	}
	if (slash && (strlen(s->snap_dir) != dlen || strncmp(path, s->snap_dir, dlen))) {
		log_error(
			"%s: %s is outside the snapshot directory %s (--snapshot-dir or [machine] "
			"snapshot_dir)",
			what, path, s->snap_dir);
		return NULL;
	}
	if (!snapshot_valid_name(name) || name[0] == '.') {
		log_error("%s: '%s' is not a file name a snapshot may take", what, name);
		return NULL;
	}
	/* It replaces a file of that name, never a socket (the API's own), a directory, ... */
	if (!fstatat(s->snap_dirfd, name, &st, AT_SYMLINK_NOFOLLOW) && !S_ISREG(st.st_mode)) {
		log_error("%s: %s/%s exists and is no regular file", what, s->snap_dir, name);
		return NULL;
	}
	return name;
}

static int api_snapshot(void *opaque, const char *state, const char *mem)
{
	struct session *s = opaque;
	const char *sn = snapshot_name(s, state, "snapshot_path");
	const char *mn = snapshot_name(s, mem, "mem_file_path");
	struct snapshot_stats st;

	if (!sn || !mn)
		return -EINVAL;
	if (!strcmp(sn, mn)) {
		log_error("snapshot_path and mem_file_path are the same file");
		return -EINVAL;
	}
	return snapshot_save(&s->vm, s->snap_dirfd, sn, mn, &st);
}

static int run(struct machine *m, const struct options *o, struct http_server *srv,
	       struct snapshot_in *snap)
{
	static const struct api_ops ops = {.pause = api_pause,
					   .resume = api_resume,
					   .stop = api_stop,
					   .snapshot = api_snapshot,
					   .balloon = api_balloon};
	struct session s = {.m = m,
			    .report_path = o->boot_report,
			    .api_srv = srv,
			    .snap = snap,
			    .resume = !o->paused,
			    .sock = srv ? srv->path : NULL};
	int status = session_start(&s);

	if (status)
		return status;
	if (srv) {
		/* A VM from a file: the API serves it (pre-boot resources answer 400). */
		api_init_running(&s.api, m->name, m, &ops, &s);
		if (snap && !s.resume)
			s.api.state = API_PAUSED;
		srv->fn = api_handle;
		srv->opaque = &s.api;
		if (http_server_attach(srv, &s.vm.loop))
			vm_stop(&s.vm, VM_FAILURE);
	}
	status = session_run(&s);
	if (srv)
		api_free(&s.api);
	if (sigfd >= 0)
		close(sigfd);
	sigfd = -1;
	return status;
}

/* InstanceStart: build the VM the API described; the pre-boot loop then hands over. */
/*
 * Build the VM s->m describes (and s->snap, for a restore) from the pre-boot loop, which
 * then hands over to the running VM's. 0, or -1 with nothing of it left.
 */
static int preboot_start(struct session *s)
{
	if (session_start(s))
		return -1;
	s->started = true;
	/* What a client sent behind its request is answered by the running VM's loop. */
	s->api_srv->hold = true;
	loop_stop(s->preboot);
	return 0;
}

static int api_start(void *opaque, struct machine *m)
{
	struct session *s = opaque;

	if (m->on_reboot == REBOOT_RESTART) {
		log_error("on_reboot = restart: a VM started over the API ends at a reboot (the "
			  "client starts the next one)");
		return -1;
	}
	s->m = m;
	if (preboot_start(s)) {
		s->m = NULL;
		return -1;
	}
	return 0;
}

/* PUT /snapshot/load: build the VM a snapshot holds; the pre-boot loop then hands over. */
static int api_load(void *opaque, const char *state, const char *mem, bool resume,
		    const struct machine_override *ov, size_t nov, const struct machine **out)
{
	struct session *s = opaque;
	struct snapshot_in *in = calloc(1, sizeof(*in));
	struct machine *m = calloc(1, sizeof(*m));
	/* The command line's --set and --user first, as for InstanceStart, then the request's. */
	struct machine_override *all = calloc(s->api.nbase_ov + nov + 1, sizeof(*all));
	int err = in && m && all ? 0 : -ENOMEM;

	for (size_t i = 0; all && i < s->api.nbase_ov; i++)
		all[i] = s->api.base_ov[i];
	for (size_t i = 0; all && i < nov; i++)
		all[s->api.nbase_ov + i] = ov[i];
	err = err ?: snapshot_open(in, state, mem);
	if (!err) {
		err = snapshot_machine(in, all, s->api.nbase_ov + nov, m);
		if (err)
			machine_free(m);
	}
	free(all);
	if (!err && m->on_reboot == REBOOT_RESTART)
		m->on_reboot = REBOOT_EXIT; /* a reboot would not come back to this state */
	if (!err) {
		s->m = m;
		s->snap = in;
		s->resume = resume;
		if (preboot_start(s)) {
			s->m = NULL;
			s->snap = NULL;
			machine_free(m);
			err = -1;
		}
	}
	if (err) {
		if (in)
			snapshot_close(in);
		free(in);
		free(m);
		return -1;
	}
	*out = m;
	return 0;
}

static void on_preboot_signal(void *opaque, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)events;
	if (read(sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	fprintf(stderr, "microvm: stopped by signal %u before InstanceStart\n", si.ssi_signo);
	loop_stop(opaque);
}

/* The uid and gid the monitor runs as once set up: -u's, or its own. */
static int api_owner(const struct options *o, uid_t *uid, gid_t *gid)
{
	*uid = geteuid();
	*gid = getegid();
	for (size_t i = 0; i < o->nov; i++)
		if (!strncmp(o->ov[i].arg, "machine.user=", 13) &&
		    sandbox_lookup_user(o->ov[i].arg + 13, uid, gid)) {
			log_error("--user %s: no such user on this host", o->ov[i].arg + 13);
			return -1;
		}
	return 0;
}

/*
 * --api-sock without --config: the architecture's default machine, described further by API
 * requests, built at InstanceStart; the socket then serves the running VM.
 */
static int api_main(const struct options *o, const char *sock)
{
	static const struct api_ops ops = {.start = api_start,
					   .pause = api_pause,
					   .resume = api_resume,
					   .stop = api_stop,
					   .snapshot = api_snapshot,
					   .load = api_load,
					   .balloon = api_balloon};
	const struct arch *arch = default_arch();
	struct session s = {.report_path = o->boot_report, .sock = sock};
	struct http_server srv = {.listen_fd = -1, .timer_fd = -1};
	struct loop pre = {.epfd = -1};
	int status = VM_USAGE;
	uid_t uid;
	gid_t gid;

	if (o->append) {
		log_error("--append: a machine configured over the API takes its command line from "
			  "PUT /boot-source (boot_args)");
		return VM_USAGE;
	}
	if (api_init(&s.api, o->name ? o->name : "anonymous-instance", "default machine",
		     arch->default_machine, o->ov, o->nov, &ops, &s))
		goto out;
	s.preboot = &pre;
	if (api_owner(o, &uid, &gid) || http_server_open(&srv, sock, uid, gid, api_handle, &s.api))
		goto out;
	s.api_srv = &srv;
	/*
	 * Before the start only root and microvm's own user may configure it: a --user account
	 * could otherwise have root open files and create TAPs for it. It may connect once the
	 * VM runs as it.
	 */
	srv.peer_uid = geteuid();
	stops_block(&s.stops);
	sigfd = signalfd(-1, &s.stops, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0 || loop_init(&pre) || http_server_attach(&srv, &pre) ||
	    loop_add(&pre, sigfd, EPOLLIN, on_preboot_signal, &pre)) {
		log_error("--api-sock %s: cannot serve it: %s", sock, strerror(errno));
		status = VM_FAILURE;
		goto out;
	}
	fprintf(stderr, "microvm: %s machine, API on %s: waiting for InstanceStart\n", arch->name,
		sock);
	status = loop_run(&pre) ? VM_FAILURE : VM_STOPPED;
	http_server_flush(&srv); /* InstanceStart's answer, before the loop changes */
	http_server_detach(&srv);
	loop_del(&pre, sigfd);
	if (s.started) {
		srv.peer_uid = uid;
		status = http_server_attach(&srv, &s.vm.loop) ? VM_FAILURE : 0;
		if (status)
			vm_stop(&s.vm, VM_FAILURE);
		status = session_run(&s);
	}
out:
	loop_free(&pre);
	http_server_close(&srv);
	api_free(&s.api);
	if (s.m) {
		machine_free(s.m);
		free(s.m);
	}
	if (s.snap)
		snapshot_close(s.snap);
	free(s.snap);
	if (sigfd >= 0)
		close(sigfd);
	sigfd = -1;
	return status;
}

/* --restore STATE: the machine and state the snapshot holds, run at once (or paused). */
static int restore_main(const struct options *o, const char *sock)
{
	struct http_server srv = {.listen_fd = -1, .timer_fd = -1};
	struct snapshot_in in;
	struct machine m;
	int status = VM_USAGE, err;

	err = snapshot_open(&in, o->restore, o->mem_file);
	if (!err) {
		err = snapshot_machine(&in, o->ov, o->nov, &m);
		if (err && m.cfg.nerrors)
			fprintf(stderr, "microvm: %s: %d error%s, nothing started\n", o->restore,
				m.cfg.nerrors, m.cfg.nerrors == 1 ? "" : "s");
		if (!err) {
			if (m.on_reboot == REBOOT_RESTART)
				m.on_reboot = REBOOT_EXIT; /* a reboot would not come back here */
			sock = sock ? sock : m.api_sock;
			if (o->paused && !sock)
				log_error("--paused: nothing could resume it without --api-sock");
			else if (!sock ||
				 !http_server_open(&srv, sock,
						   m.sandbox.drop ? m.sandbox.uid : geteuid(),
						   m.sandbox.drop ? m.sandbox.gid : getegid(),
						   api_handle, NULL))
				status = run(&m, o, sock ? &srv : NULL, &in);
			http_server_close(&srv);
		}
		machine_free(&m);
	}
	snapshot_close(&in);
	return status;
}

static volatile sig_atomic_t child_pid, stop_signal;

static void forward_signal(int sig)
{
	stop_signal = sig;
	if (child_pid > 0)
		kill(child_pid, sig);
}

/*
 * on_reboot = restart: each boot runs in a child process, a complete reset. The child
 * sandboxes itself (its filters outlive any exec, so it could not set up a VM again); this
 * parent only waits, keeps the rights that set-up needs (root, to create TAP devices) and
 * passes INT, TERM and HUP on; after one of those there is no next boot. The child dies
 * with the parent.
 */
static int supervise(struct machine *m, const struct options *o)
{
	struct sigaction sa = {.sa_handler = forward_signal};
	struct termios tio;
	bool tty = tcgetattr(STDIN_FILENO, &tio) == 0;
	sigset_t stops, old;

	sigemptyset(&sa.sa_mask);
	sigemptyset(&stops);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGHUP);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	m->sandbox.parent = getpid();
	for (;;) {
		int ws, status;
		pid_t pid;

		fflush(NULL);
		/* Until the child has its signalfd, its stop signals wait (blocked), not vanish. */
		pthread_sigmask(SIG_BLOCK, &stops, &old);
		pid = fork();
		if (pid == 0) {
			signal(SIGINT, SIG_DFL);
			signal(SIGTERM, SIG_DFL);
			signal(SIGHUP, SIG_DFL);
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != m->sandbox.parent)
				_exit(VM_FAILURE);
			exit(run(m, o, NULL,
				 NULL)); /* run() keeps them blocked, for its signalfd */
		}
		if (pid > 0)
			child_pid = pid;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (pid < 0) {
			log_error("restart: fork: %s", strerror(errno));
			return VM_FAILURE;
		}
		while (waitpid(pid, &ws, 0) < 0)
			if (errno != EINTR) {
				log_error("restart: waitpid: %s", strerror(errno));
				return VM_FAILURE;
			}
		child_pid = 0;
		status = WIFEXITED(ws) ? WEXITSTATUS(ws) : VM_FAILURE;
		if (WIFSIGNALED(ws)) {
			/* It could not restore the terminal itself. */
			if (tty)
				tcsetattr(STDIN_FILENO, TCSANOW, &tio);
			log_error("the VM process was killed by signal %d", WTERMSIG(ws));
		}
		if (status == VM_REBOOT && stop_signal) {
			fprintf(stderr, "microvm: stopped by signal %d\n", (int)stop_signal);
			return VM_STOPPED;
		}
		if (status != VM_REBOOT)
			return status;
		fprintf(stderr, "microvm: guest rebooted, restarting\n");
		timeline_reset();
		timeline_mark(TL_CONFIG_PARSED); /* the same configuration, already parsed */
	}
}

/* The machine --config names (found by name), or the default machine; overrides applied. */
static int load_machine(struct machine *m, const struct options *o)
{
	struct machine_src src = {.path = o->config, .ov = o->ov, .nov = o->nov};

	if (!o->config) {
		src.path = "default machine";
		src.text = default_arch()->default_machine;
	}
	/* --check loads the machine as a run does (disk images opened for writing, --user). */
	return machine_load_src(m, &src,
				!o->list_keys && !o->list_values &&
					(o->check || (!o->dump_dtb && !o->dump_acpi)));
}

/*
 * --list-keys, --list-values: what the machine's sections were asked for, also when it has
 * errors (the keys of an incomplete device, for completion).
 */
static void list_known(const struct machine *m, const struct options *o)
{
	const char *dot = o->list_values ? strchr(o->list_values, '.') : NULL;
	const char *const *words;
	char sec[128];

	if (!dot) {
		cfg_print_known(&m->cfg, stdout);
		return;
	}
	snprintf(sec, sizeof(sec), "%.*s", (int)(dot - o->list_values), o->list_values);
	words = cfg_known_words(&m->cfg, sec, dot + 1);
	/* A device section's type is looked up, not read as an enum. */
	if (!words && !strcmp(dot + 1, "type"))
		words = device_type_names();
	for (; words && *words; words++)
		printf("%s\n", *words);
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct machine m;
	char *cmdline = NULL;
	const char *what;
	int err, status;

	char sockbuf[108];
	const char *sock;
	struct http_server srv = {.listen_fd = -1, .timer_fd = -1};

	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return ctl_main(argc - 1, argv + 1);
	sandbox_note_inherited(); /* closed at lock-down */
	status = parse_args(argc, argv, &o) || outputs_ok(&o) ? VM_USAGE : 0;
	if (!status && o.list_machines && !catalog_list(stdout))
		fprintf(stderr, "microvm: no machines found beside this microvm (in "
				"PREFIX/share/microvm/machines or a checkout's machines/)\n");
	sock = o.api_sock;
	if (!status && !o.list_machines && !sock && o.name) {
		if (api_sock_path(o.name, sockbuf, sizeof(sockbuf), true))
			status = VM_USAGE;
		sock = sockbuf;
	}
	if (status || o.list_machines) {
		free_options(&o);
		return status;
	}
	if (!o.config && !o.builtin) {
		status = o.restore ? restore_main(&o, sock) : api_main(&o, sock);
		free_options(&o);
		return status;
	}
	if (o.config && !(o.config = own(&o, catalog_find(o.config)))) {
		free_options(&o);
		return VM_USAGE;
	}
	err = load_machine(&m, &o);
	what = o.config ? o.config : "default machine";
	if (err == -EINVAL) {
		if (o.list_keys || o.list_values)
			list_known(&m, &o);
		said_errors(&m, what);
		machine_free(&m);
		free_options(&o);
		return VM_USAGE;
	}
	if (err) {
		log_error("%s: %s", what, strerror(-err));
		machine_free(&m);
		free_options(&o);
		return VM_USAGE;
	}
	timeline_mark(TL_CONFIG_PARSED);
	log_info("configuration parsed at %.1f ms", timeline_now() * 1e3);
	if (o.append && append_cmdline(&m, o.append, &cmdline)) {
		status = VM_USAGE;
	} else if (o.list_keys || o.list_values) {
		list_known(&m, &o);
		status = 0;
	} else if (o.check || o.dump_dtb || o.dump_acpi) {
		status = offline(&m, &o);
	} else if ((sock = sock ? sock : m.api_sock) && m.on_reboot == REBOOT_RESTART) {
		log_error(
			"%s: on_reboot = restart cannot be combined with an API socket (each boot "
			"is a new process)",
			what);
		status = VM_USAGE;
	} else if (sock) {
		status = http_server_open(&srv, sock, m.sandbox.drop ? m.sandbox.uid : geteuid(),
					  m.sandbox.drop ? m.sandbox.gid : getegid(), api_handle,
					  NULL)
				 ? VM_USAGE
				 : run(&m, &o, &srv, NULL);
		http_server_close(&srv);
	} else {
		status =
			m.on_reboot == REBOOT_RESTART ? supervise(&m, &o) : run(&m, &o, NULL, NULL);
	}
	machine_free(&m);
	free(cmdline);
	free_options(&o);
	return status;
}
