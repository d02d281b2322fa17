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
#include "kvm_arch.h"
#include "log.h"
#include "machine.h"
#include "sandbox.h"
#include "snapshot/snapshot.h"
#include "term.h"
#include "timeline.h"
#include "virtio/balloon.h"
#include "vm.h"

#ifndef MICROVM_VERSION
#error "MICROVM_VERSION comes from the VERSION file (see the Makefile)"
#endif

static const char usage[] =
	"usage: microvm --config FILE [options]\n"
	"       microvm --api-sock PATH | --name NAME [options]   (configured over the API)\n"
	"       microvm --restore STATE [--mem-file FILE] [options]\n"
	"       microvm ctl VM COMMAND [ARGS]                     (microvm ctl help)\n"
	"\n"
	"  -c, --config FILE        machine description (INI), e.g. machines/rpi5.ini\n"
	"      --api-sock PATH      serve Firecracker's REST API on a Unix socket at PATH;\n"
	"                           without --config, wait there for InstanceStart\n"
	"  -n, --name NAME          the VM's name; its API socket is in the runtime\n"
	"                           directory (microvm ctl NAME ...) unless --api-sock says\n"
	"  -s, --set SEC.KEY=VALUE  override a key of the file (repeatable)\n"
	"  -k, --kernel PATH        kernel Image (same as --set boot.kernel=PATH)\n"
	"  -i, --initrd PATH        initramfs (same as --set boot.initrd=PATH)\n"
	"  -a, --append ARGS        append ARGS to the [boot] cmdline\n"
	"  -u, --user NAME          run as NAME once set up (same as --set machine.user=NAME)\n"
	"      --restore STATE      run the VM saved in snapshot STATE (PUT /snapshot/create)\n"
	"      --mem-file FILE      its memory file (default: the one STATE names, beside it)\n"
	"      --paused             with --restore: stay paused until the API resumes it\n"
	"      --snapshot-dir DIR   where the API may write snapshots (default: the socket's\n"
	"                           directory; same as --set machine.snapshot_dir=DIR)\n"
	"      --check              validate, print the resolved machine and exit\n"
	"      --list-keys          print every SECTION.KEY the machine's sections accept\n"
	"      --dump-dtb PATH      write the generated device tree to PATH and exit (arm64)\n"
	"      --dump-acpi DIR      write the ACPI tables to DIR/SIG.dat and exit (x86_64)\n"
	"  -v, --verbose            report start-up phases, timing and memory use\n"
	"      --boot-report FILE   write the boot timeline, exits and memory use as JSON\n"
	"  -h, --help               this text\n"
	"  -V, --version            print the version\n"
	"\n"
	"Exit status: 0 guest powered off, 1 run-time failure, 2 usage or configuration\n"
	"error, 3 guest rebooted (on_reboot = exit), 4 stopped from the host (signal, Ctrl-A x,\n"
	"the API's Stop).\n"
	"On a terminal, Ctrl-A x quits and Ctrl-A Ctrl-A sends Ctrl-A to the guest.\n";

struct options {
	const char *config, *dump_dtb, *dump_acpi, *append, *boot_report, *api_sock, *name;
	const char *restore, *mem_file;
	char **sets;
	size_t nsets;
	int check, list_keys, paused;
};

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
	char **v = realloc(o->sets, (o->nsets + 1) * sizeof(*v));

	if (!v || !s)
		return -1;
	o->sets = v;
	o->sets[o->nsets++] = s;
	return 0;
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
		OPT_SNAPSHOT_DIR
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
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:s:k:i:a:u:n:vhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
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
			o->append = optarg;
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
			o->dump_acpi = optarg;
			break;
		case OPT_DUMP_DTB:
			o->dump_dtb = optarg;
			break;
		case OPT_BOOT_REPORT:
			o->boot_report = optarg;
			break;
		case OPT_API_SOCK:
			o->api_sock = optarg;
			break;
		case 'n':
			o->name = optarg;
			break;
		case OPT_RESTORE:
			o->restore = optarg;
			break;
		case OPT_MEM_FILE:
			o->mem_file = optarg;
			break;
		case OPT_PAUSED:
			o->paused = 1;
			break;
		case OPT_SNAPSHOT_DIR:
			add_set(o, dup_set("machine.snapshot_dir", optarg));
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
	if (optind < argc) {
		fprintf(stderr, "microvm: unexpected argument '%s'\n%s", argv[optind], usage);
		return -1;
	}
	if (!o->config && !o->api_sock && !o->name && !o->restore) {
		fprintf(stderr,
			"microvm: --config FILE, --restore STATE or --api-sock PATH is "
			"required\n%s",
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
	if (!o->config && (o->check || o->list_keys || o->dump_dtb || o->dump_acpi)) {
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
	return 0;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wbe");

	if (!f || fwrite(buf, 1, len, f) != len) {
		log_error("%s: %s", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f) ? -1 : 0;
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

/* --dump-acpi: every ACPI table the guest would be given, one file per table. */
static int dump_acpi(struct machine *m, const char *dir)
{
	struct boot_layout none = {0}; /* the tables do not depend on the boot files */
	struct boot_info info = {0};
	int status = VM_USAGE;

	if (m->arch->boot_info_kind != ARCH_ACPI) {
		log_error("%s: an %s machine has no ACPI tables (%s)", m->cfg.path, m->arch->name,
			  m->arch->boot_info_hint);
		return VM_USAGE;
	}
	if (m->arch->boot_info_ready && m->arch->boot_info_ready(m))
		return VM_USAGE;
	if (!m->arch->boot_info(m, &none, &info)) {
		status = 0;
		for (unsigned i = 0; !status && i < info.n; i++) {
			const struct boot_chunk *c = &info.chunk[i];
			char path[4096];

			if (strncmp(c->name, "acpi/", 5))
				continue;
			snprintf(path, sizeof(path), "%s/%s.dat", dir, c->name + 5);
			status = write_file(path, c->data, c->len) ? VM_FAILURE : 0;
		}
	} else {
		log_error("%s: cannot build the boot information", m->cfg.path);
	}
	boot_info_free(&info);
	return status;
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
		if (boot_prepare(m, &bi, 1)) {
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
	for (size_t i = 0; i < o->nsets; i++)
		if (!strncmp(o->sets[i], "machine.user=", 13) &&
		    sandbox_lookup_user(o->sets[i] + 13, uid, gid)) {
			log_error("--user %s: no such user on this host", o->sets[i] + 13);
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
	const struct arch *arch = kvm_guest_arch ? kvm_guest_arch : &arch_arm64;
	struct machine_override *ov = calloc(o->nsets + 1, sizeof(*ov));
	struct session s = {.report_path = o->boot_report, .sock = sock};
	struct http_server srv = {.listen_fd = -1, .timer_fd = -1};
	struct loop pre = {.epfd = -1};
	int status = VM_USAGE;
	uid_t uid;
	gid_t gid;

	if (!ov)
		return VM_FAILURE;
	for (size_t i = 0; i < o->nsets; i++)
		ov[i] = (struct machine_override){.arg = o->sets[i], .origin = "--set"};
	if (o->append)
		log_warn("--append is ignored with the API: PUT /boot-source sets boot_args");
	if (api_init(&s.api, o->name ? o->name : "anonymous-instance", "default machine",
		     arch->default_machine, ov, o->nsets, &ops, &s))
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
	free(ov);
	return status;
}

/* --restore STATE: the machine and state the snapshot holds, run at once (or paused). */
static int restore_main(const struct options *o, const char *sock)
{
	struct machine_override *ov = calloc(o->nsets + 1, sizeof(*ov));
	struct http_server srv = {.listen_fd = -1, .timer_fd = -1};
	struct snapshot_in in;
	struct machine m;
	int status = VM_USAGE, err;

	if (!ov)
		return VM_FAILURE;
	for (size_t i = 0; i < o->nsets; i++)
		ov[i] = (struct machine_override){.arg = o->sets[i], .origin = "--set"};
	err = snapshot_open(&in, o->restore, o->mem_file);
	if (!err) {
		err = snapshot_machine(&in, ov, o->nsets, &m);
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
	free(ov);
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

int main(int argc, char **argv)
{
	struct options o = {0};
	struct machine m;
	char *cmdline = NULL;
	int err, status;

	char sockbuf[108];
	const char *sock;
	struct http_server srv = {.listen_fd = -1, .timer_fd = -1};

	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return ctl_main(argc - 1, argv + 1);
	sandbox_note_inherited(); /* closed at lock-down */
	if (parse_args(argc, argv, &o))
		return VM_USAGE;
	sock = o.api_sock;
	if (!sock && o.name) {
		if (api_sock_path(o.name, sockbuf, sizeof(sockbuf), true))
			return VM_USAGE;
		sock = sockbuf;
	}
	if (!o.config) {
		status = o.restore ? restore_main(&o, sock) : api_main(&o, sock);
		for (size_t i = 0; i < o.nsets; i++)
			free(o.sets[i]);
		free(o.sets);
		return status;
	}
	err = machine_load(&m, o.config, o.sets, o.nsets,
			   !o.check && !o.list_keys && !o.dump_dtb && !o.dump_acpi);
	for (size_t i = 0; i < o.nsets; i++)
		free(o.sets[i]);
	free(o.sets);
	if (err == -EINVAL) {
		fprintf(stderr, "microvm: %s: %d error%s, nothing started\n", o.config,
			m.cfg.nerrors, m.cfg.nerrors == 1 ? "" : "s");
		machine_free(&m);
		return VM_USAGE;
	}
	if (err) {
		log_error("%s: %s", o.config, strerror(-err));
		machine_free(&m);
		return VM_USAGE;
	}
	if (o.append) {
		size_t n = strlen(m.cmdline) + strlen(o.append) + 2;

		cmdline = malloc(n);
		if (!cmdline)
			return VM_FAILURE;
		snprintf(cmdline, n, "%s%s%s", m.cmdline, *m.cmdline ? " " : "", o.append);
		m.cmdline = cmdline;
	}
	timeline_mark(TL_CONFIG_PARSED);
	log_info("configuration parsed at %.1f ms", timeline_now() * 1e3);
	if (o.check) {
		machine_print(&m, stdout);
		status = 0;
	} else if (o.list_keys) {
		cfg_print_known(&m.cfg, stdout);
		status = 0;
	} else if (o.dump_acpi) {
		status = dump_acpi(&m, o.dump_acpi);
	} else if (o.dump_dtb) {
		struct boot_images bi;
		struct boot_info info = {0};
		const struct boot_chunk *dtb;

		status = VM_USAGE;
		if (m.arch->boot_info_kind != ARCH_DTB)
			log_error("%s: an %s machine has no device tree (%s)", o.config,
				  m.arch->name, m.arch->boot_info_hint);
		else if (m.arch->boot_info_ready && m.arch->boot_info_ready(&m))
			;
		else if (!boot_prepare(&m, &bi, 0)) {
			if (!m.arch->boot_info(&m, &bi.layout, &info) &&
			    (dtb = boot_info_find(&info, "dtb")))
				status = write_file(o.dump_dtb, dtb->data, dtb->len) ? VM_FAILURE
										     : 0;
			boot_info_free(&info);
			boot_free(&bi);
		}
	} else if ((sock = sock ? sock : m.api_sock) && m.on_reboot == REBOOT_RESTART) {
		log_error(
			"%s: on_reboot = restart cannot be combined with an API socket (each boot "
			"is a new process)",
			o.config);
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
	return status;
}
