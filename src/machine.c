/* machine: builds and validates the machine description; creates devices from their sections. */
#include "machine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch.h"
#include "array.h"
#include "device.h"
#include "log.h"

static const char *const core_sections[] = {"machine", "memory", "boot", "virtio-mmio", "pci"};
/* [machine] arch's words: each names an architecture (arch_by_name). */
static const char *const arches[] = {"arm64", "x86_64", NULL};

static bool is_fixed_section(const struct machine *m, const char *name)
{
	const char *const *arch_sections = m->arch->sections;

	for (size_t i = 0; i < ARRAY_SIZE(core_sections); i++)
		if (!strcmp(name, core_sections[i]))
			return true;
	for (size_t i = 0; arch_sections[i]; i++)
		if (!strcmp(name, arch_sections[i]))
			return true;
	return false;
}

static const char *const *fixed_section_names(const struct machine *m)
{
	const char *const *arch_sections = m->arch->sections;
	static const char *names[32];
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(core_sections); i++)
		names[n++] = core_sections[i];
	for (size_t i = 0; arch_sections[i] && n < 31; i++)
		names[n++] = arch_sections[i];
	names[n] = NULL;
	return names;
}

/*
 * [machine]. Whatever else is wrong, the rest is checked: a bad vcpus leaves checks that need
 * it out (MACHINE_BAD_VCPUS), a bad align or ipa_bits is taken as the most lenient value, so that
 * only what is wrong under any value is reported. -1 when [machine] arch itself is wrong:
 * nothing else can be read then.
 */
static int parse_machine(struct machine *m)
{
	static const char *const reboot[] = {"exit", "restart", NULL};
	static const char *const seccomp[] = {"on", "off", "log", NULL};
	char bad[64];
	int arch;
	struct cfg *c = &m->cfg;
	struct cfg_entry *e;
	const char *base;
	uint64_t align;
	int err;

	base = strrchr(c->path, '/');
	base = base ? base + 1 : c->path;
	cfg_str(c, "machine", "name", &m->name, base, 0);
	/* The guest architecture: which machine model reads the rest of the file. */
	err = cfg_enum(c, "machine", "arch", arches, &arch, 0);
	m->arch = arch_by_name(arches[err ? 0 : arch]);
	if (cfg_u32(c, "machine", "vcpus", &m->vcpus, 1, 1, MACHINE_MAX_VCPUS, 0))
		m->bad |= MACHINE_BAD_VCPUS;
	cfg_enum(c, "machine", "on_reboot", reboot, &m->on_reboot, REBOOT_EXIT);
	cfg_enum(c, "machine", "seccomp", seccomp, &m->sandbox.mode, SANDBOX_ON);
	cfg_str(c, "machine", "seccomp_deny", &m->sandbox.deny, NULL, 0);
	cfg_str(c, "machine", "user", &m->user, NULL, 0);
	cfg_str(c, "machine", "api_sock", &m->api_sock, NULL, 0);
	cfg_path(c, "machine", "snapshot_dir", &m->snapshot_dir, 0);
	if (m->user && sandbox_lookup_user(m->user, &m->sandbox.uid, &m->sandbox.gid)) {
		cfg_error(c, cfg_get(c, "machine", "user"), "machine",
			  "no user '%s' on this host (a name from /etc/passwd or a number)",
			  m->user);
	} else if (m->user && m->run && geteuid() != 0 &&
		   (m->sandbox.uid != geteuid() || m->sandbox.gid != getegid())) {
		/* Only root can become someone else: for a run, say so now, before anything
		 * starts. */
		cfg_error(c, cfg_get(c, "machine", "user"), "machine",
			  "becoming '%s' needs root (microvm runs as uid %u)", m->user,
			  (unsigned)geteuid());
	}
	m->sandbox.drop = m->user != NULL;
	if (sandbox_unknown_syscall(m->sandbox.deny, bad, sizeof(bad)))
		cfg_error(c, cfg_get(c, "machine", "seccomp_deny"), "machine",
			  "'%s' is not a system call on this host", bad);
	if (cfg_u32(c, "machine", "ipa_bits", &m->ipa_bits, 40, 32, 52, 0))
		m->ipa_bits = 52;
	m->align = 4096;
	if (!cfg_u64(c, "machine", "align", &align, 16 << 10, 0)) {
		if (align >= 4096 && !(align & (align - 1))) {
			m->align = align;
		} else {
			e = cfg_get(c, "machine", "align");
			cfg_error(c, e, "machine", "align must be a power of two of at least 4K");
		}
	}
	return err;
}

/* [memory]: RAM is claimed only when both base and size are right (else MACHINE_BAD_MEMORY). */
static int parse_memory(struct machine *m)
{
	struct cfg *c = &m->cfg;
	int ebase, esize, err = 0;

	ebase = cfg_u64(c, "memory", "base", &m->ram_base, 0x40000000, 0);
	esize = cfg_u64(c, "memory", "size", &m->ram_size, 512ull << 20, 0);
	cfg_bool(c, "memory", "hugepages", &m->ram_hugepages, false);
	if (!esize && m->ram_size < (16ull << 20)) {
		cfg_error(c, cfg_get(c, "memory", "size"), "memory", "size must be at least 16M");
		esize = -1;
	}
	if (!ebase && m->ram_base % (2u << 20)) {
		cfg_error(c, cfg_get(c, "memory", "base"), "memory",
			  "base 0x%llx must be 2 MiB aligned (arm64 boot protocol)",
			  (unsigned long long)m->ram_base);
		ebase = -1;
	}
	if (!esize && m->ram_size % m->align) {
		cfg_error(c, cfg_get(c, "memory", "size"), "memory",
			  "size 0x%llx is not a multiple of [machine] align 0x%llx",
			  (unsigned long long)m->ram_size, (unsigned long long)m->align);
		esize = -1;
	}
	if (ebase || esize) {
		m->bad |= MACHINE_BAD_MEMORY;
		return -1;
	}
	/* Where the architecture has a hole below 4 GiB (x86), RAM that would reach into it
	 * continues at 4 GiB instead. */
	m->ram_low_size = m->ram_size;
	if (m->arch->ram_hole && m->ram_base < m->arch->ram_hole &&
	    m->ram_size > m->arch->ram_hole - m->ram_base) {
		m->ram_low_size = m->arch->ram_hole - m->ram_base;
		err |= alloc_region(&m->alloc, "memory", "ram above 4G", 1ull << 32,
				    m->ram_size - m->ram_low_size, cfg_get(c, "memory", "size"));
	}
	return err | alloc_region(&m->alloc, "memory", "ram", m->ram_base, m->ram_low_size,
				  cfg_get(c, "memory", "size"));
}

static int parse_boot(struct machine *m)
{
	struct cfg *c = &m->cfg;
	int err = 0;

	err |= cfg_path(c, "boot", "kernel", &m->kernel, 0);
	err |= cfg_path(c, "boot", "initrd", &m->initrd, 0);
	if (m->kernel)
		err |= cfg_need_file(c, cfg_get(c, "boot", "kernel"), m->kernel, false);
	if (m->initrd)
		err |= cfg_need_file(c, cfg_get(c, "boot", "initrd"), m->initrd, false);
	err |= cfg_str(c, "boot", "cmdline", &m->cmdline, "", 0);
	if (strlen(m->cmdline) >= BOOT_CMDLINE_MAX) {
		cfg_error(c, cfg_get(c, "boot", "cmdline"), "boot",
			  "%zu bytes: a kernel keeps a command line of at most %d",
			  strlen(m->cmdline), BOOT_CMDLINE_MAX - 1);
		err = -1;
	}
	return err;
}

/* A window: base and size keys, both required when the section exists. */
static int parse_window(struct machine *m, const char *sec, const char *prefix, struct window *w,
			bool required)
{
	struct cfg *c = &m->cfg;
	char kb[64], ks[64];
	int err = 0;

	snprintf(kb, sizeof(kb), "%sbase", prefix);
	snprintf(ks, sizeof(ks), "%ssize", prefix);
	if (!required && !cfg_get(c, sec, kb) && !cfg_get(c, sec, ks)) {
		w->base = w->size = 0;
		return 0;
	}
	err |= cfg_u64(c, sec, kb, &w->base, 0, CFG_REQUIRED);
	err |= cfg_u64(c, sec, ks, &w->size, 0, CFG_REQUIRED);
	if (err)
		return -1;
	/* Region name: the prefix without its '_' ("ecam", "mmio32"), or "window". */
	snprintf(kb, sizeof(kb), "%s", prefix[0] ? prefix : "window_");
	kb[strlen(kb) - 1] = '\0';
	return alloc_region(&m->alloc, sec, kb, w->base, w->size, cfg_get(c, sec, ks));
}

/* [virtio-mmio]: every key read and checked; any error leaves its slots unknown. */
static int parse_virtio_mmio(struct machine *m)
{
	struct cfg *c = &m->cfg;
	int ewin, eslot, eirq;

	m->has_virtio_mmio = cfg_section(c, "virtio-mmio") != NULL;
	if (!m->has_virtio_mmio)
		return 0;
	ewin = parse_window(m, "virtio-mmio", "", &m->virtio_mmio, true);
	eslot = cfg_u64(c, "virtio-mmio", "slot_size", &m->virtio_slot_size, m->align, 0);
	eirq = cfg_u32(c, "virtio-mmio", "irq_base", &m->virtio_irq_base, 0, 0, 1019, CFG_REQUIRED);
	eirq |= cfg_u32(c, "virtio-mmio", "irq_count", &m->virtio_irq_count, 0, 1, 988,
			CFG_REQUIRED);
	if (!eslot && (m->virtio_slot_size < 0x200 || m->virtio_slot_size % m->align ||
		       (!ewin && m->virtio_mmio.size % m->virtio_slot_size))) {
		cfg_error(c, cfg_get(c, "virtio-mmio", "slot_size"), "virtio-mmio",
			  "slot_size 0x%llx must be at least 0x200, a multiple of [machine] align "
			  "and divide the window size",
			  (unsigned long long)m->virtio_slot_size);
		eslot = -1;
	}
	if (!eirq) {
		if (!ewin)
			alloc_region_irqs(&m->alloc, "virtio-mmio", m->virtio_irq_base,
					  m->virtio_irq_count);
		eirq = alloc_irqs(&m->alloc, "virtio-mmio", m->virtio_irq_base, m->virtio_irq_count,
				  cfg_get(c, "virtio-mmio", "irq_base"));
	}
	if (ewin || eslot || eirq) {
		m->bad |= MACHINE_BAD_VIRTIO_MMIO;
		return -1;
	}
	return 0;
}

/* [pci]: every key read and checked; any error leaves its slots and MSI unknown. */
static int parse_pci(struct machine *m)
{
	struct cfg *c = &m->cfg;
	int eirq, err = 0;

	m->has_pci = cfg_section(c, "pci") != NULL;
	if (!m->has_pci)
		return 0;
	eirq = cfg_u32(c, "pci", "intx_irq", &m->pci_intx_irq, 0, 0, 1016, CFG_REQUIRED);
	err |= cfg_bool(c, "pci", "msi", &m->pci_msi, true);
	if (parse_window(m, "pci", "ecam_", &m->ecam, true)) {
		err = -1;
	} else {
		if (!eirq)
			alloc_region_irqs(&m->alloc, "pci", m->pci_intx_irq, 4);
		if (m->ecam.size % (1 << 20) || m->ecam.size > (256u << 20)) {
			cfg_error(c, cfg_get(c, "pci", "ecam_size"), "pci",
				  "ecam_size must be a multiple of 1M (one bus) and at most 256M");
			err = -1;
		}
	}
	if (parse_window(m, "pci", "mmio32_", &m->mmio32, true)) {
		err = -1;
	} else if (m->mmio32.base + m->mmio32.size > (1ull << 32)) {
		cfg_error(c, cfg_get(c, "pci", "mmio32_base"), "pci",
			  "mmio32 window must lie below 4 GiB");
		err = -1;
	}
	err |= parse_window(m, "pci", "mmio64_", &m->mmio64, false);
	err |= parse_window(m, "pci", "io_", &m->pio, false);
	if (!eirq)
		eirq = alloc_irqs(&m->alloc, "pci", m->pci_intx_irq, 4,
				  cfg_get(c, "pci", "intx_irq"));
	if (err || eirq) {
		m->bad |= MACHINE_BAD_PCI;
		return -1;
	}
	return 0;
}

int machine_virtio_mmio_slot(struct machine *m, const char *owner, uint64_t *base, uint32_t *irq)
{
	uint64_t slots;

	if (!m->has_virtio_mmio) {
		cfg_error(&m->cfg, cfg_get(&m->cfg, owner, "transport"), owner,
			  "transport mmio needs a [virtio-mmio] window in the machine");
		return -1;
	}
	if (m->bad & MACHINE_BAD_VIRTIO_MMIO)
		return -1;
	slots = m->virtio_mmio.size / m->virtio_slot_size;
	if (m->virtio_slots_used >= slots || m->virtio_slots_used >= m->virtio_irq_count) {
		cfg_error(&m->cfg, cfg_get(&m->cfg, owner, "transport"), owner,
			  "no free virtio-mmio slot (%llu slots, %u interrupt lines)",
			  (unsigned long long)slots, m->virtio_irq_count);
		return -1;
	}
	*base = m->virtio_mmio.base + m->virtio_slots_used * m->virtio_slot_size;
	*irq = m->virtio_irq_base + m->virtio_slots_used;
	m->virtio_slots_used++;
	return 0;
}

int machine_pci_slot(struct machine *m, const char *owner, uint8_t *slot)
{
	if (!m->has_pci) {
		cfg_error(&m->cfg, cfg_get(&m->cfg, owner, "transport"), owner,
			  "transport pci needs a [pci] section in the machine");
		return -1;
	}
	if (m->bad & MACHINE_BAD_PCI)
		return -1;
	if (m->pci_slots_used >= 31) {
		cfg_error(&m->cfg, cfg_get(&m->cfg, owner, "transport"), owner,
			  "no free PCI slot (31 devices at most)");
		return -1;
	}
	*slot = ++m->pci_slots_used;
	return 0;
}

int machine_set_console(struct machine *m, const struct device *dev)
{
	if (m->console) {
		cfg_error(&m->cfg, cfg_get(&m->cfg, dev->name, "console"), dev->name,
			  "[%s] is already the console", m->console->name);
		return -1;
	}
	m->console = dev;
	return 0;
}

/* The other architecture whose own section sec is (as [gic] is arm64's), or NULL. */
static const struct arch *other_arch_section(const struct machine *m, const char *sec)
{
	for (size_t i = 0; arches[i]; i++) {
		const struct arch *a = arch_by_name(arches[i]);

		for (size_t j = 0; a != m->arch && a->sections[j]; j++)
			if (!strcmp(a->sections[j], sec))
				return a;
	}
	return NULL;
}

/* A section with no type: what it is, unless a line refused in it may have been its type. */
static void untyped_section(struct machine *m, const char *sec)
{
	struct cfg *c = &m->cfg;
	const struct arch *other = other_arch_section(m, sec);
	const char *hint = closest_name(sec, fixed_section_names(m), 0);

	if (other)
		cfg_error(c, NULL, sec,
			  "does not apply to an %s machine ([machine] arch): it is an %s "
			  "machine's section",
			  m->arch->name, other->name);
	else if (cfg_section(c, sec)->damaged)
		return;
	else if (hint)
		cfg_error(c, NULL, sec, "unknown section (did you mean [%s]?)", hint);
	else
		cfg_error(c, NULL, sec, "unknown section: a device section needs 'type = ...'");
}

/*
 * Every device section, each checked whatever the others hold. A device that had an error is
 * marked bad, so that checks of the whole machine (configure_late) pass it over.
 */
static int create_devices(struct machine *m)
{
	struct cfg *c = &m->cfg;
	int err = 0;

	m->devices = calloc(c->nsections ? c->nsections : 1, sizeof(*m->devices));
	BUG_ON(!m->devices);
	for (size_t i = 0; i < c->nsections; i++) {
		const char *sec = c->sections[i].name;
		struct cfg_entry *type;
		const struct device_ops *ops;
		struct device *dev;
		int before = c->nerrors;

		if (is_fixed_section(m, sec))
			continue;
		type = cfg_get(c, sec, "type");
		if (!type) {
			untyped_section(m, sec);
			cfg_consume_section(c, sec);
			err = -1;
			continue;
		}
		ops = device_type(type->value);
		if (!ops) {
			const char *hint = closest_name(type->value, device_type_names(), 0);

			cfg_error(c, type, NULL, "unknown device type '%s'%s%s%s", type->value,
				  hint ? " (did you mean '" : "", hint ? hint : "",
				  hint ? "'?)" : "");
			cfg_consume_section(c, sec);
			err = -1;
			continue;
		}
		dev = &m->devices[m->ndevices++];
		dev->name = strdup(sec);
		dev->ops = ops;
		if (ops->configure(dev, m) || c->nerrors != before) {
			dev->bad = true;
			err = -1;
		}
	}
	return err;
}

int machine_load(struct machine *m, const char *path, char *const *sets, size_t nsets, bool run)
{
	struct machine_override *ov = calloc(nsets ? nsets : 1, sizeof(*ov));
	struct machine_src src = {.path = path, .ov = ov, .nov = nsets};
	int ret;

	if (!ov) {
		memset(m, 0, sizeof(*m));
		return -ENOMEM;
	}
	for (size_t i = 0; i < nsets; i++)
		ov[i] = (struct machine_override){.arg = sets[i], .origin = "--set"};
	ret = machine_load_src(m, &src, run);
	free(ov);
	return ret;
}

/* No section at all, from the file or --set: say what the file was. */
static void nothing_described(struct cfg *c)
{
	if (!c->bytes && c->kind)
		cfg_error(c, NULL, NULL, "%s that reads nothing: no machine described", c->kind);
	else if (!c->bytes)
		cfg_error(c, NULL, NULL, "an empty file: no machine described");
	else
		cfg_error(c, NULL, NULL,
			  "no [section] in the file (only comments or blank lines): no machine "
			  "described");
}

/*
 * Every independent error is reported: a section's errors leave out only the checks that
 * depend on what it failed to say (MACHINE_BAD_*, damaged sections, bad devices).
 */
static void validate(struct machine *m)
{
	m->alloc.cfg = &m->cfg;
	if (parse_machine(m))
		return; /* the machine model itself is unknown: nothing else can be read */
	m->alloc.align = m->align;
	m->alloc.ipa_limit = 1ull << m->ipa_bits;
	/* The architecture sets alloc.nr_irqs from the interrupt controller. */
	m->arch->configure(m);
	parse_memory(m);
	parse_boot(m);
	parse_virtio_mmio(m);
	parse_pci(m);
	create_devices(m);
	if (m->arch->configure_late)
		m->arch->configure_late(m);
	cfg_check_unused(&m->cfg, fixed_section_names(m));
}

int machine_load_src(struct machine *m, const struct machine_src *src, bool run)
{
	struct cfg *c = &m->cfg;
	int ret;

	memset(m, 0, sizeof(*m));
	m->run = run;
	ret = src->text ? cfg_load_text(c, src->path, src->text) : cfg_load(c, src->path);
	if (ret < 0)
		return ret;
	if (!c->nerrors && src->check && src->check(c, src->check_arg))
		return -EINVAL;
	if (!c->unreadable) {
		for (size_t i = 0; i < src->nov; i++) {
			const struct machine_override *ov = &src->ov[i];

			if (ov->apply)
				ov->apply(c, ov);
			else
				cfg_set_from(c, ov->arg, ov->origin, ov->field);
		}
		if (!c->nsections && !c->nerrors)
			nothing_described(c);
		else if (c->nsections)
			validate(m);
	}
	cfg_errors_hidden(c);
	return c->nerrors ? -EINVAL : 0;
}

void machine_print(const struct machine *m, FILE *out)
{
	fprintf(out, "machine %s (%s), %s\n", m->name, m->cfg.path, m->arch->name);
	fprintf(out,
		"  vcpus %u, memory %llu MiB at 0x%llx, ipa %u bits, align 0x%llx, "
		"on_reboot %s\n",
		m->vcpus, (unsigned long long)(m->ram_size >> 20), (unsigned long long)m->ram_base,
		m->ipa_bits, (unsigned long long)m->align,
		m->on_reboot == REBOOT_EXIT ? "exit" : "restart");
	fprintf(out, "  seccomp %s%s%s, user %s\n",
		(const char *[]){"on", "off", "log"}[m->sandbox.mode],
		m->sandbox.deny ? " without " : "", m->sandbox.deny ? m->sandbox.deny : "",
		m->user ? m->user : "(unchanged)");
	m->arch->describe(m, out);
	for (size_t i = 0; i < m->ndevices; i++)
		m->devices[i].ops->describe(&m->devices[i], out);
	if (m->has_virtio_mmio)
		fprintf(out, "  virtio-mmio: %llu slots of 0x%llx, irqs %u-%u\n",
			(unsigned long long)(m->virtio_mmio.size / m->virtio_slot_size),
			(unsigned long long)m->virtio_slot_size, m->virtio_irq_base,
			m->virtio_irq_base + m->virtio_irq_count - 1);
	if (m->has_pci)
		fprintf(out, "  pci: buses 0-%llu, intx irqs %u-%u, msi %s\n",
			(unsigned long long)(m->ecam.size >> 20) - 1, m->pci_intx_irq,
			m->pci_intx_irq + 3, m->pci_msi ? "on" : "off");
	fprintf(out, "  kernel %s\n  initrd %s\n  cmdline \"%s\"\n",
		m->kernel ? m->kernel : "(none)", m->initrd ? m->initrd : "(none)",
		m->cmdline ? m->cmdline : "");
	alloc_print(&m->alloc, out);
}

void machine_free(struct machine *m)
{
	for (size_t i = 0; i < m->ndevices; i++) {
		if (m->devices[i].ops->destroy)
			m->devices[i].ops->destroy(&m->devices[i]);
		free(m->devices[i].name);
	}
	free(m->devices);
	free(m->kernel);
	free(m->snapshot_dir);
	free(m->initrd);
	free(m->arch_priv);
	alloc_free(&m->alloc);
	cfg_free(&m->cfg);
	memset(m, 0, sizeof(*m));
}
