/*
 * arm64 snapshot: each vCPU's registers and run state, the guest's counter, and the in-kernel
 * vGIC (v2, or v3 with its ITS) saved into the state file and restored into a fresh VM.
 *
 * Restore checks everything first (a dry pass over every field it will use, against this
 * host's KVM), and only then writes: a state this host cannot take back changes nothing.
 */
#include "kvm_arch.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arm64.h"
#include "array.h"
#include "le.h"
#include "log.h"
#include "machine.h"
#include "snapshot/devstate.h"
#include "snapshot/snapfile.h"
#include "vm.h"

/* Linux 6.4 UAPI (KVM_CAP_COUNTER_OFFSET), newer than some build hosts' headers. */
#ifndef KVM_CAP_COUNTER_OFFSET
#define KVM_CAP_COUNTER_OFFSET 227
#endif
struct arm64_counter_offset {
	uint64_t counter_offset;
	uint64_t reserved;
};
#define ARM64_SET_COUNTER_OFFSET _IOW(KVMIO, 0xb5, struct arm64_counter_offset)
#ifdef KVM_ARM_SET_COUNTER_OFFSET
_Static_assert(ARM64_SET_COUNTER_OFFSET == KVM_ARM_SET_COUNTER_OFFSET, "counter offset ioctl");
#endif

#define REG_MAX_BYTES 256    /* the largest KVM_REG_SIZE, U2048 (an SVE Z slice) */
#define REG_LIST_MAX  65536u /* more registers than that is no KVM we know */
#define MPIDR_EL1     ARM64_SYS_REG(3, 0, 0, 0, 5)
#define CORE_KEY(x)   (KVM_REG_ARM64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(x))
#define GIC_MAX_IRQS  1024
#define GIC_BLOCK_MAX (GIC_MAX_IRQS * 64 / 8) /* the largest block: IROUTER, 64 bits each */

/* Register offsets from the GICv2 and GICv3 architecture specifications. */
#define GICD_CTLR	0x0000
#define GICD_IIDR	0x0008
#define GICR_CTLR	0x0000
#define GICR_PROPBASER	0x0070
#define GICR_PENDBASER	0x0078
#define GICR_SGI_FRAME	0x10000
#define GITS_CTLR	0x0000
#define GITS_IIDR	0x0004
#define GITS_CBASER	0x0080
#define GITS_CWRITER	0x0088
#define GITS_CREADR	0x0090
#define GITS_BASER(n)	(0x0100 + 8 * (n))
#define ICC_CTLR_PRI(c) ((unsigned)((c) >> 8) & 7) /* ICC_CTLR_EL1.PRIbits: priority bits - 1 */

/* What a restore pass works with. */
struct rst {
	struct vm *vm;
	const struct snap *s;
	bool dry;		    /* check every field the pass uses; change nothing in KVM */
	struct kvm_reg_list **regs; /* each vCPU's KVM_GET_REG_LIST, sorted */
	bool counter_offset;	    /* this host has KVM_CAP_COUNTER_OFFSET */
	bool has_pcounter;	    /* KVM lists the physical counter (KVM_REG_ARM_PTIMER_CNT) */
	uint64_t counter, pcounter; /* the saved virtual and physical counters */
};

static struct arm64_vm *avm(const struct vm *vm)
{
	return vm->arch_priv;
}

/* vCPU registers: everything KVM_GET_REG_LIST names, as bytes fields "reg.<id in hex>". */

static int one_reg(const struct vcpu *v, unsigned long req, uint64_t id, void *val)
{
	struct kvm_one_reg reg = {.id = id, .addr = (uintptr_t)val};

	return ioctl(v->fd, req, &reg) < 0 ? -errno : 0;
}

static size_t reg_size(uint64_t id)
{
	return (size_t)1 << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
}

static void reg_field(uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "reg.%016llx", (unsigned long long)id);
}

/* The id a field name "reg.<16 lowercase hex digits>" stands for: 1, 0 for another field, -1. */
static int reg_field_id(const char *name, uint64_t *id)
{
	if (strncmp(name, "reg.", 4))
		return 0;
	name += 4;
	if (strlen(name) != 16 || strspn(name, "0123456789abcdef") != 16)
		return -1;
	*id = strtoull(name, NULL, 16);
	return 1;
}

static const struct {
	uint64_t key; /* the id without its size */
	const char *name;
} reg_names[] = {
	{CORE_KEY(regs.sp), "sp"},
	{CORE_KEY(regs.pc), "pc"},
	{CORE_KEY(regs.pstate), "pstate"},
	{CORE_KEY(sp_el1), "sp_el1"},
	{CORE_KEY(elr_el1), "elr_el1"},
	{CORE_KEY(spsr[KVM_SPSR_EL1]), "spsr_el1"},
	{CORE_KEY(spsr[KVM_SPSR_ABT]), "spsr_abt"},
	{CORE_KEY(spsr[KVM_SPSR_UND]), "spsr_und"},
	{CORE_KEY(spsr[KVM_SPSR_IRQ]), "spsr_irq"},
	{CORE_KEY(spsr[KVM_SPSR_FIQ]), "spsr_fiq"},
	{CORE_KEY(fp_regs.fpsr), "fpsr"},
	{CORE_KEY(fp_regs.fpcr), "fpcr"},
	{KVM_REG_ARM_TIMER_CTL, "cntv_ctl"},
	{KVM_REG_ARM_TIMER_CVAL, "cntv_cval"},
	{KVM_REG_ARM_TIMER_CNT, "cntvct"},
	{KVM_REG_ARM_PTIMER_CTL, "cntp_ctl"},
	{KVM_REG_ARM_PTIMER_CVAL, "cntp_cval"},
	{KVM_REG_ARM_PTIMER_CNT, "cntpct"},
	{MPIDR_EL1, "mpidr_el1"},
	{KVM_REG_ARM_PSCI_VERSION, "psci_version"},
	{KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1, "smccc_arch_workaround_1"},
	{KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2, "smccc_arch_workaround_2"},
	{KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3, "smccc_arch_workaround_3"},
	{KVM_REG_ARM_STD_BMAP, "std_bmap"},
	{KVM_REG_ARM_STD_HYP_BMAP, "std_hyp_bmap"},
	{KVM_REG_ARM_VENDOR_HYP_BMAP, "vendor_hyp_bmap"},
};

/* A name for register id, or "" (core, timer, firmware, system and CCSIDR registers). */
static void reg_name(uint64_t id, char *buf, size_t len)
{
	const uint64_t key = id & ~KVM_REG_SIZE_MASK, coproc = id & KVM_REG_ARM_COPROC_MASK;
	const unsigned idx = id & 0xffff, x0 = KVM_REG_ARM_CORE_REG(regs.regs);
	const unsigned v0 = KVM_REG_ARM_CORE_REG(fp_regs.vregs);

	*buf = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(reg_names); i++)
		if ((reg_names[i].key & ~KVM_REG_SIZE_MASK) == key) {
			snprintf(buf, len, "%s", reg_names[i].name);
			return;
		}
	if (coproc == KVM_REG_ARM_CORE && idx >= x0 && idx < x0 + 62 && !((idx - x0) % 2))
		snprintf(buf, len, "x%u", (idx - x0) / 2);
	else if (coproc == KVM_REG_ARM_CORE && idx >= v0 && idx < v0 + 128 && !((idx - v0) % 4))
		snprintf(buf, len, "v%u", (idx - v0) / 4);
	else if (coproc == KVM_REG_ARM64_SYSREG)
		snprintf(buf, len, "s%u_%u_c%u_c%u_%u", idx >> 14 & 3, idx >> 11 & 7, idx >> 7 & 15,
			 idx >> 3 & 15, idx & 7);
	else if (coproc == KVM_REG_ARM_DEMUX)
		snprintf(buf, len, "ccsidr, csselr %u", idx & 0xff);
}

/* "register 0x603000000013c005 (mpidr_el1)", for messages. */
static const char *reg_describe(uint64_t id, char *buf, size_t len)
{
	char name[40];

	reg_name(id, name, sizeof(name));
	snprintf(buf, len, *name ? "register 0x%016llx (%s)" : "register 0x%016llx",
		 (unsigned long long)id, name);
	return buf;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The vCPU's KVM_GET_REG_LIST, sorted, in *out (the caller frees it). -errno, said. */
static int reg_list(const struct vcpu *v, struct kvm_reg_list **out)
{
	uint64_t n = 0;

	for (int tries = 0; tries < 4; tries++) {
		struct kvm_reg_list *l = malloc(sizeof(*l) + n * sizeof(l->reg[0]));
		int err;

		if (!l)
			return -ENOMEM;
		l->n = n;
		if (ioctl(v->fd, KVM_GET_REG_LIST, l) == 0) {
			qsort(l->reg, l->n, sizeof(l->reg[0]), cmp_u64);
			*out = l;
			return 0;
		}
		err = errno;
		n = l->n;
		free(l);
		if (err != E2BIG || n > REG_LIST_MAX) {
			log_error("vcpu%u: KVM_GET_REG_LIST: %s", v->id, strerror(err));
			return -err;
		}
	}
	log_error("vcpu%u: KVM_GET_REG_LIST: the list keeps changing size", v->id);
	return -EAGAIN;
}

static bool reg_listed(const struct kvm_reg_list *l, uint64_t id)
{
	return bsearch(&id, l->reg, l->n, sizeof(l->reg[0]), cmp_u64) != NULL;
}

/* The vCPU's affinity (from its MPIDR_EL1) as the GICv3 attributes' upper half wants it. */
static int vcpu_affinity(const struct vcpu *v, uint64_t *aff)
{
	uint64_t mpidr;
	int err = one_reg(v, KVM_GET_ONE_REG, MPIDR_EL1, &mpidr);

	if (err) {
		log_error("vcpu%u: reading MPIDR_EL1: %s", v->id, strerror(-err));
		return err;
	}
	/* Aff3.Aff2.Aff1.Aff0 in bits 63..32 */
	*aff = (((mpidr >> 8) & 0xff000000) | (mpidr & 0xffffff))
	       << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT;
	return 0;
}

static int save_reg(const struct vcpu *v, struct snap_sec *sec, uint64_t id)
{
	uint8_t val[REG_MAX_BYTES] __attribute__((aligned(16)));
	char field[SNAP_NAME_MAX], desc[80];
	size_t size = reg_size(id);
	int err;

	if (size > sizeof(val)) {
		log_error("vcpu%u: %s is %zu bytes, more than microvm saves", v->id,
			  reg_describe(id, desc, sizeof(desc)), size);
		return -ENOTSUP;
	}
	err = one_reg(v, KVM_GET_ONE_REG, id, val);
	if (err) {
		log_error("vcpu%u: reading %s: %s", v->id, reg_describe(id, desc, sizeof(desc)),
			  strerror(-err));
		return err;
	}
	reg_field(id, field, sizeof(field));
	return snap_put_bytes(sec, field, val, size);
}

/* Section vcpuN: every register KVM lists, and the run state. */
static int save_vcpu(const struct vcpu *v, struct snap *s)
{
	struct kvm_mp_state mp;
	struct kvm_reg_list *l;
	struct snap_sec *sec;
	char name[SNAP_NAME_MAX];
	int err;

	snprintf(name, sizeof(name), "vcpu%u", v->id);
	sec = snap_add(s, name);
	if (!sec)
		return -ENOMEM;
	err = reg_list(v, &l);
	if (err)
		return err;
	for (uint64_t i = 0; !err && i < l->n; i++)
		err = save_reg(v, sec, l->reg[i]);
	free(l);
	if (err)
		return err;
	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) < 0) {
		err = -errno;
		log_error("vcpu%u: KVM_GET_MP_STATE: %s", v->id, strerror(errno));
		return err;
	}
	return snap_put_u64(sec, "mp_state", mp.mp_state);
}

/* Is the saved register set of vCPU i the one this host's KVM has? -ENOTSUP said if not. */
static int check_vcpu_regs(const struct rst *r, unsigned i, const struct snap_sec *sec)
{
	const struct kvm_reg_list *l = r->regs[i];
	char field[SNAP_NAME_MAX], desc[80];
	struct snap_field_view f;

	for (uint64_t k = 0; k < l->n; k++) {
		const void *p;
		size_t len;
		int err;

		reg_field(l->reg[k], field, sizeof(field));
		err = snap_get_bytes(sec, field, &p, &len);
		if (err == -ENOENT) {
			log_error(
				"vcpu%u: this host's KVM has %s, which the snapshot lacks: it was "
				"taken on another CPU or kernel",
				i, reg_describe(l->reg[k], desc, sizeof(desc)));
			return -ENOTSUP;
		}
		if (err || len != reg_size(l->reg[k])) {
			log_error(
				"vcpu%u: %s: the snapshot holds no %zu-byte value for it (another "
				"CPU or kernel, or a damaged file)",
				i, reg_describe(l->reg[k], desc, sizeof(desc)),
				reg_size(l->reg[k]));
			return -ENOTSUP;
		}
	}
	for (size_t k = 0; k < snap_nfields(sec); k++) {
		uint64_t id;
		int kind;

		if (snap_field_at(sec, k, &f))
			return -EINVAL;
		kind = reg_field_id(f.name, &id);
		if (kind < 0) {
			log_error("vcpu%u: snapshot field '%s' names no register", i, f.name);
			return -EINVAL;
		}
		if (kind > 0 && !reg_listed(l, id)) {
			log_error(
				"vcpu%u: the snapshot has %s, which this host's KVM lacks: it was "
				"taken on another CPU or kernel",
				i, reg_describe(id, desc, sizeof(desc)));
			return -ENOTSUP;
		}
	}
	return 0;
}

static int need_mp_state(const struct snap_sec *sec, unsigned i, uint32_t *mp)
{
	uint64_t v;
	int err = snap_need_u64(sec, "mp_state", UINT32_MAX, &v);

	if (err)
		return err;
	if (v != KVM_MP_STATE_RUNNABLE && v != KVM_MP_STATE_STOPPED &&
	    v != KVM_MP_STATE_SUSPENDED) {
		log_error("vcpu%u: snapshot mp_state %llu is no arm64 vCPU state", i,
			  (unsigned long long)v);
		return -EINVAL;
	}
	*mp = (uint32_t)v;
	return 0;
}

/*
 * The guest's clock across a snapshot.
 *
 * A guest reads time from the virtual counter (CNTVCT_EL0) and arms its virtual timer
 * (CNTV_CVAL_EL0, CNTV_CTL_EL0) against it. On restore the virtual counter resumes from the
 * value it had when the state was saved: to the guest no time passed while the snapshot sat
 * on disk, as for a suspended machine; catching the wall clock up is the guest's NTP's job.
 * So the counter never goes backwards, whatever host and uptime the restore runs on, and an
 * armed timer (its CVAL kept as saved) fires after the guest time it had left.
 *
 * The saved value is vCPU 0's KVM_REG_ARM_TIMER_CNT (section "cpu", field "counter"): all
 * vCPUs share the VM's counter offset. On restore:
 *  - With KVM_CAP_COUNTER_OFFSET (Linux 6.4+), one KVM_ARM_SET_COUNTER_OFFSET on the VM, of
 *    the host counter read just before minus the saved value. KVM applies that offset to the
 *    physical counter too, so the guest's physical counter resumes at the virtual counter's
 *    saved value, not its own ("pcounter"); a physical timer's CVAL is moved back by the
 *    difference the two counters had, so that it also fires after the time it had left
 *    (read in that order, the difference can only be overestimated: early, never late).
 *    Linux guests at EL1 use only the virtual counter and timer.
 *  - Without it, KVM_REG_ARM_TIMER_CNT (and KVM_REG_ARM_PTIMER_CNT where KVM lists it) is
 *    written with the saved value on every vCPU; KVM turns each write into the VM's offset
 *    at that moment, so the counter can lead the saved value by the microseconds the writes
 *    take, never lag it.
 * The generic register loop skips both counters.
 *
 * Order: the counter first, then every other register (the timers' CVAL among them), the
 * timers' CTL last. Until CTL is written the timer is disabled (KVM_ARM_VCPU_INIT's reset
 * value), so KVM can never see it enabled against a counter or CVAL other than the final
 * ones, and the only output level it can compute is the true one: a timer whose deadline
 * had passed fires at once (early is harmless). Nothing clears that level behind the timer's
 * back afterwards: the vGIC is restored after the vCPUs, but only the latched pending state
 * of the private interrupts (the timers' and the PMU's PPIs) is written back, never their
 * line level, which KVM recomputes from the timer when the vCPU first runs.
 */

/* The host's counter, which KVM offsets to make the guest's (the virtual one, at EL0). */
static int host_counter(uint64_t *now)
{
#ifdef __aarch64__
	uint64_t v;

	__asm__ volatile("isb\n\tmrs %0, cntvct_el0" : "=r"(v) : : "memory");
	*now = v;
	return 0;
#else
	(void)now;
	log_error("snapshot: the host counter is readable on arm64 hosts only");
	return -ENOTSUP;
#endif
}

/* Section "cpu": the guest's counters, read virtual first, and the host's counter offset. */
static int save_clock(struct vm *vm, struct snap *s)
{
	const struct vcpu *v = &vm->vcpus[0];
	struct snap_sec *sec = snap_add(s, "cpu");
	struct kvm_reg_list *l;
	uint64_t cnt, pcnt = 0;
	bool phys;
	int err;

	if (!sec)
		return -ENOMEM;
	err = reg_list(v, &l);
	if (err)
		return err;
	phys = reg_listed(l, KVM_REG_ARM_PTIMER_CNT);
	free(l);
	err = one_reg(v, KVM_GET_ONE_REG, KVM_REG_ARM_TIMER_CNT, &cnt);
	if (!err && phys)
		err = one_reg(v, KVM_GET_ONE_REG, KVM_REG_ARM_PTIMER_CNT, &pcnt);
	if (err) {
		log_error("vcpu0: reading the guest's counter: %s", strerror(-err));
		return err;
	}
	err = snap_put_u64(sec, "counter", cnt);
	if (!err && phys)
		err = snap_put_u64(sec, "pcounter", pcnt);
	return err ?: snap_put_u64(sec, "counter_offset", vm_has_cap(vm, KVM_CAP_COUNTER_OFFSET));
}

static int clock_load(struct rst *r)
{
	const struct snap_sec *sec = snap_need(r->s, "cpu");
	int err;

	if (!sec)
		return -EINVAL;
	r->counter_offset = vm_has_cap(r->vm, KVM_CAP_COUNTER_OFFSET);
	r->has_pcounter = reg_listed(r->regs[0], KVM_REG_ARM_PTIMER_CNT);
	err = snap_need_u64(sec, "counter", UINT64_MAX, &r->counter);
	if (!err && r->has_pcounter)
		err = snap_need_u64(sec, "pcounter", UINT64_MAX, &r->pcounter);
	return err;
}

/* Make the guest's counter resume from the saved value (see above). */
static int restore_counter(const struct rst *r)
{
	struct arm64_counter_offset o = {0};
	uint64_t now;
	int err;

	if (!r->counter_offset) {
		for (unsigned i = 0; i < r->vm->nvcpus; i++) {
			const struct vcpu *v = &r->vm->vcpus[i];
			uint64_t cnt = r->counter, pcnt = r->pcounter;

			err = one_reg(v, KVM_SET_ONE_REG, KVM_REG_ARM_TIMER_CNT, &cnt);
			if (!err && r->has_pcounter)
				err = one_reg(v, KVM_SET_ONE_REG, KVM_REG_ARM_PTIMER_CNT, &pcnt);
			if (err) {
				log_error("vcpu%u: setting the guest's counter: %s", i,
					  strerror(-err));
				return -EINVAL;
			}
		}
		return 0;
	}
	err = host_counter(&now);
	if (err)
		return err;
	o.counter_offset = now - r->counter; /* modulo 2^64, as the hardware offset works */
	if (ioctl(r->vm->vm_fd, ARM64_SET_COUNTER_OFFSET, &o) < 0) {
		log_error("KVM_ARM_SET_COUNTER_OFFSET: %s", strerror(errno));
		return -EINVAL;
	}
	return 0;
}

/* Register restore phases, in order; the counters are restore_counter's. */
enum reg_phase { PHASE_FW, PHASE_MAIN, PHASE_TIMER_CTL, PHASE_COUNTER };

static enum reg_phase reg_phase(uint64_t id)
{
	uint64_t coproc = id & KVM_REG_ARM_COPROC_MASK;

	/* The hypercall interface the guest was given (PSCI version, SMCCC services), first. */
	if (coproc == KVM_REG_ARM_FW || coproc == KVM_REG_ARM_FW_FEAT_BMAP)
		return PHASE_FW;
	if (id == KVM_REG_ARM_TIMER_CNT || id == KVM_REG_ARM_PTIMER_CNT)
		return PHASE_COUNTER;
	if (id == KVM_REG_ARM_TIMER_CTL || id == KVM_REG_ARM_PTIMER_CTL)
		return PHASE_TIMER_CTL;
	return PHASE_MAIN;
}

/* A saved value as this host's counters want it: a physical timer's CVAL follows its counter. */
static void reg_adjust(const struct rst *r, uint64_t id, uint8_t *val)
{
	uint64_t cval;

	if (id != KVM_REG_ARM_PTIMER_CVAL || !r->counter_offset || !r->has_pcounter)
		return;
	memcpy(&cval, val, sizeof(cval));
	cval -= r->pcounter - r->counter;
	memcpy(val, &cval, sizeof(cval));
}

/* Set vCPU i's registers of one phase from the (checked) snapshot. -EINVAL said. */
static int restore_regs(const struct rst *r, unsigned i, const struct snap_sec *sec,
			enum reg_phase phase)
{
	const struct vcpu *v = &r->vm->vcpus[i];
	const struct kvm_reg_list *l = r->regs[i];
	uint8_t val[REG_MAX_BYTES] __attribute__((aligned(16)));
	char field[SNAP_NAME_MAX], desc[80];

	for (uint64_t k = 0; k < l->n; k++) {
		uint64_t id = l->reg[k];
		const void *p;
		size_t len;
		int err;

		if (reg_phase(id) != phase)
			continue;
		reg_field(id, field, sizeof(field));
		if (snap_get_bytes(sec, field, &p, &len) || len != reg_size(id) ||
		    len > sizeof(val))
			return -EINVAL; /* cannot happen: check_vcpu_regs passed */
		memcpy(val, p, len);
		reg_adjust(r, id, val);
		err = one_reg(v, KVM_SET_ONE_REG, id, val);
		if (err) {
			log_error("vcpu%u: KVM refused %s: %s", i,
				  reg_describe(id, desc, sizeof(desc)), strerror(-err));
			return -EINVAL;
		}
	}
	return 0;
}

static const struct snap_sec *vcpu_sec(const struct rst *r, unsigned i)
{
	char name[SNAP_NAME_MAX];

	snprintf(name, sizeof(name), "vcpu%u", i);
	return snap_need(r->s, name);
}

/* The rest of vCPU i, once the counter is set: registers, timer controls, run state. */
static int restore_vcpu(const struct rst *r, unsigned i)
{
	const struct snap_sec *sec = vcpu_sec(r, i);
	struct kvm_mp_state mp;
	int err;

	if (!sec)
		return -EINVAL;
	err = need_mp_state(sec, i, &mp.mp_state);
	err = err ?: restore_regs(r, i, sec, PHASE_MAIN);
	err = err ?: restore_regs(r, i, sec, PHASE_TIMER_CTL);
	if (err)
		return err;
	/* Powered-off secondaries stay off (STOPPED), the others become runnable. */
	if (ioctl(r->vm->vcpus[i].fd, KVM_SET_MP_STATE, &mp) < 0) {
		log_error("vcpu%u: KVM_SET_MP_STATE %u: %s", i, mp.mp_state, strerror(errno));
		return -EINVAL;
	}
	return 0;
}

static int restore_vcpus(const struct rst *r)
{
	const unsigned n = r->vm->nvcpus;
	int err = 0;

	for (unsigned i = 0; !err && i < n; i++) {
		const struct snap_sec *sec = vcpu_sec(r, i);
		uint32_t mp;

		if (!sec)
			return -EINVAL;
		if (r->dry)
			err = check_vcpu_regs(r, i, sec) ?: need_mp_state(sec, i, &mp);
		else
			err = restore_regs(r, i, sec, PHASE_FW);
	}
	if (err || r->dry)
		return err;
	err = restore_counter(r);
	for (unsigned i = 0; !err && i < n; i++)
		err = restore_vcpu(r, i);
	return err;
}

/*
 * The vGIC. Interrupt state lives in blocks of registers with a fixed number of bits per
 * interrupt; a bank says where (the distributor for the shared interrupts, a vCPU's banked
 * distributor (v2) or redistributor SGI frame (v3) for INTIDs 0-31). Each block is a bytes
 * field holding its 32-bit registers, little-endian, in order.
 */
struct gic_bank {
	int fd;
	int version;
	uint32_t group; /* KVM_DEV_ARM_VGIC_GRP_DIST_REGS or _REDIST_REGS */
	uint64_t cpu;	/* the attribute's upper half: vCPU index (v2) or affinity (v3) */
	uint32_t base;	/* of the interrupt blocks: 0, or the GICv3 SGI frame */
	char who[32];	/* for messages */
};

#define BLK_V2	  0x01 /* in a GICv2 */
#define BLK_V3	  0x02 /* in a GICv3 */
#define BLK_SPI	  0x04 /* shared interrupts only (the banked copies are read-only or absent) */
#define BLK_NOSGI 0x08 /* leave the SGI bits alone on restore (GICv2: SPENDSGIR holds them) */
#define BLK_LEVEL 0x10 /* not registers: KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO line levels */

struct gic_block {
	const char *field; /* the snapshot field */
	const char *reg;   /* for messages */
	uint16_t set;	   /* offset of the register for INTID 0 */
	uint16_t clear;	   /* offset of its clearing twin (restore: clear what is not set), or 0 */
	uint8_t bits;	   /* per interrupt */
	uint8_t flags;
};

/*
 * In restore order: how an interrupt is delivered first (group, trigger, priority, target),
 * then its state (line level, active, pending), enabling last. KVM queues an interrupt to a
 * vCPU when it becomes pending and enabled, to the target it has then.
 */
static const struct gic_block gic_blocks[] = {
	{"igroupr", "IGROUPR", 0x080, 0, 1, BLK_V2 | BLK_V3},
	{"icfgr", "ICFGR", 0xc00, 0, 2, BLK_V2 | BLK_V3},
	{"ipriorityr", "IPRIORITYR", 0x400, 0, 8, BLK_V2 | BLK_V3},
	{"itargetsr", "ITARGETSR", 0x800, 0, 8, BLK_V2 | BLK_SPI},
	{"irouter", "IROUTER", 0x6000, 0, 64, BLK_V3 | BLK_SPI},
	{"level", "line level", 0, 0, 1, BLK_V3 | BLK_SPI | BLK_LEVEL},
	{"isactiver", "ISACTIVER", 0x300, 0x380, 1, BLK_V2 | BLK_V3},
	{"ispendr", "ISPENDR", 0x200, 0x280, 1, BLK_V2 | BLK_NOSGI},
	/* GICv3 from userspace: ISPENDR sets the latches exactly; ICPENDR is ignored */
	{"ispendr", "ISPENDR", 0x200, 0, 1, BLK_V3},
	{"isenabler", "ISENABLER", 0x100, 0x180, 1, BLK_V2 | BLK_V3},
};

/* GICv2 SGI pending state per source CPU (GICD_SPENDSGIRn, GICD_CPENDSGIRn): 8 bits per SGI. */
static const struct gic_block gicv2_sgi_pending = {
	.field = "spendsgir",
	.reg = "SPENDSGIR",
	.set = 0xf20,
	.clear = 0xf10,
	.bits = 8,
	.flags = BLK_V2,
};

static bool block_used(const struct gic_block *k, int version, bool spi)
{
	return (k->flags & (version == 2 ? BLK_V2 : BLK_V3)) && (spi || !(k->flags & BLK_SPI));
}

static int gic_rw(const struct gic_bank *b, uint32_t group, uint32_t off, void *val, bool write,
		  const char *reg)
{
	int err = write ? arm64_set_attr(b->fd, group, b->cpu | off, val)
			: arm64_get_attr(b->fd, group, b->cpu | off, val);

	if (err)
		log_error("vGIC %s: %s %s (0x%x): %s", b->who, write ? "writing" : "reading", reg,
			  off, strerror(-err));
	return err;
}

/* Word w of block k from INTID first: its attribute group and offset. */
static uint32_t block_at(const struct gic_bank *b, const struct gic_block *k, uint16_t reg,
			 unsigned first, size_t w, uint32_t *group)
{
	if (k->flags & BLK_LEVEL) {
		*group = KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO;
		return (VGIC_LEVEL_INFO_LINE_LEVEL << KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT) |
		       (uint32_t)(first + 32 * w);
	}
	*group = b->group;
	return b->base + reg + first * k->bits / 8 + 4 * (uint32_t)w;
}

/* Save block k for n interrupts from INTID first (multiples of 32, or 16 SGIs). */
static int block_save(const struct gic_bank *b, const struct gic_block *k, unsigned first,
		      unsigned n, struct snap_sec *sec)
{
	uint8_t buf[GIC_BLOCK_MAX];
	size_t len = (size_t)n * k->bits / 8;

	BUG_ON(len > sizeof(buf) || len % 4);
	for (size_t w = 0; w < len / 4; w++) {
		uint32_t group, off = block_at(b, k, k->set, first, w, &group), v;
		int err = gic_rw(b, group, off, &v, false, k->reg);

		if (err)
			return err;
		le32_put(buf + 4 * w, v);
	}
	return snap_put_bytes(sec, k->field, buf, len);
}

static int block_restore(const struct rst *r, const struct gic_bank *b, const struct gic_block *k,
			 unsigned first, unsigned n, const struct snap_sec *sec)
{
	uint8_t buf[GIC_BLOCK_MAX];
	size_t len = (size_t)n * k->bits / 8;
	int err;

	BUG_ON(len > sizeof(buf) || len % 4);
	err = snap_need_bytes(sec, k->field, buf, len);
	for (size_t w = 0; !err && !r->dry && w < len / 4; w++) {
		uint32_t group, off, v = le32_get(buf + 4 * w), keep = ~0u, c;

		if ((k->flags & BLK_NOSGI) && first + 32 * w == 0)
			keep = 0xffff0000u;
		if (k->clear) {
			c = ~v & keep;
			off = block_at(b, k, k->clear, first, w, &group);
			err = gic_rw(b, group, off, &c, true, k->reg);
		}
		v &= keep;
		off = block_at(b, k, k->set, first, w, &group);
		err = err ?: gic_rw(b, group, off, &v, true, k->reg);
	}
	return err;
}

static int gic_version(const struct vm *vm)
{
	return arm64_gic(vm->m)->version;
}

static unsigned gic_nr_irqs(const struct vm *vm)
{
	return arm64_gic(vm->m)->spis + GIC_SPI_BASE;
}

/* The distributor (its GICv3 affinity half names vCPU 0, for the SPIs' line levels). */
static int bank_dist(const struct vm *vm, struct gic_bank *b)
{
	*b = (struct gic_bank){.fd = avm(vm)->gic_fd,
			       .version = gic_version(vm),
			       .group = KVM_DEV_ARM_VGIC_GRP_DIST_REGS};
	snprintf(b->who, sizeof(b->who), "distributor");
	return b->version == 3 ? vcpu_affinity(&vm->vcpus[0], &b->cpu) : 0;
}

/* vCPU v's private interrupts: its banked distributor (v2) or its redistributor (v3). */
static int bank_cpu(const struct vm *vm, const struct vcpu *v, struct gic_bank *b)
{
	*b = (struct gic_bank){.fd = avm(vm)->gic_fd, .version = gic_version(vm)};
	snprintf(b->who, sizeof(b->who), "vcpu%u", v->id);
	if (b->version == 2) {
		b->group = KVM_DEV_ARM_VGIC_GRP_DIST_REGS;
		b->cpu = (uint64_t)v->id << KVM_DEV_ARM_VGIC_CPUID_SHIFT;
		return 0;
	}
	b->group = KVM_DEV_ARM_VGIC_GRP_REDIST_REGS;
	b->base = GICR_SGI_FRAME;
	return vcpu_affinity(v, &b->cpu);
}

/* A register kept as a u64 field: 32 bits, or 64 bits (accessed as two 32-bit halves). */
struct gic_reg {
	const char *field, *reg;
	uint16_t off;
	uint8_t bits;
};

static int reg_save(const struct gic_bank *b, uint32_t group, const struct gic_reg *g,
		    struct snap_sec *sec)
{
	uint32_t lo, hi = 0;
	int err = gic_rw(b, group, g->off, &lo, false, g->reg);

	if (!err && g->bits == 64)
		err = gic_rw(b, group, g->off + 4, &hi, false, g->reg);
	return err ?: snap_put_u64(sec, g->field, (uint64_t)hi << 32 | lo);
}

static int reg_restore(const struct rst *r, const struct gic_bank *b, uint32_t group,
		       const struct gic_reg *g, const struct snap_sec *sec)
{
	uint64_t v;
	uint32_t lo, hi;
	int err = snap_need_u64(sec, g->field, g->bits == 64 ? UINT64_MAX : UINT32_MAX, &v);

	if (err || r->dry)
		return err;
	lo = (uint32_t)v;
	hi = (uint32_t)(v >> 32);
	err = gic_rw(b, group, g->off, &lo, true, g->reg);
	if (!err && g->bits == 64)
		err = gic_rw(b, group, g->off + 4, &hi, true, g->reg);
	return err;
}

/*
 * GICD_IIDR first: its revision says which behaviour the state expects (on a GICv2 writing it
 * also makes the group registers writable). GICD_CTLR next, before any interrupt state: KVM
 * queues an interrupt to a vCPU only while the distributor is enabled, and enabling it later
 * from userspace does not requeue what became pending meanwhile.
 */
static const struct gic_reg gicd_regs[] = {
	{"iidr", "GICD_IIDR", GICD_IIDR, 32},
	{"ctlr", "GICD_CTLR", GICD_CTLR, 32},
};

/* GICv2 CPU interface (KVM's formats: PMR as 5 bits, APRn as one bit per preemption level). */
static const struct gic_reg gicc_regs[] = {
	{"gicc_pmr", "GICC_PMR", 0x04, 32},   {"gicc_bpr", "GICC_BPR", 0x08, 32},
	{"gicc_abpr", "GICC_ABPR", 0x1c, 32}, {"gicc_apr0", "GICC_APR0", 0xd0, 32},
	{"gicc_apr1", "GICC_APR1", 0xd4, 32}, {"gicc_apr2", "GICC_APR2", 0xd8, 32},
	{"gicc_apr3", "GICC_APR3", 0xdc, 32}, {"gicc_ctlr", "GICC_CTLR", 0x00, 32},
};

/* GICv3 redistributor: the LPI tables before GICR_CTLR (EnableLPIs freezes them). */
static const struct gic_reg gicr_bases[] = {
	{"propbaser", "GICR_PROPBASER", GICR_PROPBASER, 64},
	{"pendbaser", "GICR_PENDBASER", GICR_PENDBASER, 64},
};
static const struct gic_reg gicr_ctlr = {"gicr_ctlr", "GICR_CTLR", GICR_CTLR, 32};

/* GICv3 CPU interface system registers (op0 3, op1 0). */
#define ICC(crn, crm, op2) ((3u << 14) | ((crn) << 7) | ((crm) << 3) | (op2))

struct icc_reg {
	const char *field, *reg;
	uint16_t instr;
	uint8_t apr; /* 1 + n for the active priority registers AP0Rn, AP1Rn, else 0 */
};

/*
 * In restore order: ICC_CTLR_EL1 first (its PRIbits bound the APRs KVM takes, its CBPR says
 * whether BPR1 is written), the group enables last.
 */
static const struct icc_reg icc_regs[] = {
	{"icc_ctlr", "ICC_CTLR_EL1", ICC(12, 12, 4), 0},
	{"icc_sre", "ICC_SRE_EL1", ICC(12, 12, 5), 0},
	{"icc_pmr", "ICC_PMR_EL1", ICC(4, 6, 0), 0},
	{"icc_bpr0", "ICC_BPR0_EL1", ICC(12, 8, 3), 0},
	{"icc_bpr1", "ICC_BPR1_EL1", ICC(12, 12, 3), 0},
	{"icc_ap0r0", "ICC_AP0R0_EL1", ICC(12, 8, 4), 1},
	{"icc_ap0r1", "ICC_AP0R1_EL1", ICC(12, 8, 5), 2},
	{"icc_ap0r2", "ICC_AP0R2_EL1", ICC(12, 8, 6), 3},
	{"icc_ap0r3", "ICC_AP0R3_EL1", ICC(12, 8, 7), 4},
	{"icc_ap1r0", "ICC_AP1R0_EL1", ICC(12, 9, 0), 1},
	{"icc_ap1r1", "ICC_AP1R1_EL1", ICC(12, 9, 1), 2},
	{"icc_ap1r2", "ICC_AP1R2_EL1", ICC(12, 9, 2), 3},
	{"icc_ap1r3", "ICC_AP1R3_EL1", ICC(12, 9, 3), 4},
	{"icc_igrpen0", "ICC_IGRPEN0_EL1", ICC(12, 12, 6), 0},
	{"icc_igrpen1", "ICC_IGRPEN1_EL1", ICC(12, 12, 7), 0},
};

/* How many AP0Rn/AP1Rn a CPU interface has, from its ICC_CTLR_EL1 (5, 6, 7 priority bits). */
static unsigned icc_aprs(uint64_t ctlr)
{
	unsigned pri = ICC_CTLR_PRI(ctlr) + 1;

	return pri >= 7 ? 4 : pri == 6 ? 2 : 1;
}

static int icc_save(const struct gic_bank *b, struct snap_sec *sec)
{
	unsigned aprs = 0;

	for (size_t i = 0; i < ARRAY_SIZE(icc_regs); i++) {
		const struct icc_reg *e = &icc_regs[i];
		uint64_t v;
		int err;

		if (e->apr > aprs)
			continue;
		err = gic_rw(b, KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, e->instr, &v, false, e->reg);
		err = err ?: snap_put_u64(sec, e->field, v);
		if (err)
			return err;
		if (i == 0)
			aprs = icc_aprs(v);
	}
	return 0;
}

static int icc_restore(const struct rst *r, const struct gic_bank *b, const struct snap_sec *sec)
{
	unsigned aprs = 0;

	for (size_t i = 0; i < ARRAY_SIZE(icc_regs); i++) {
		const struct icc_reg *e = &icc_regs[i];
		uint64_t v;
		int err;

		if (e->apr > aprs)
			continue;
		err = snap_need_u64(sec, e->field, UINT64_MAX, &v);
		if (!err && !r->dry)
			err = gic_rw(b, KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, e->instr, &v, true,
				     e->reg);
		if (err)
			return err;
		if (i == 0)
			aprs = icc_aprs(v);
	}
	return 0;
}

/* Section gic.cpuN: vCPU v's interrupts 0-31 and its CPU interface. */
static int save_gic_cpu(const struct vm *vm, const struct vcpu *v, struct snap *s)
{
	char name[SNAP_NAME_MAX];
	struct gic_bank b;
	struct snap_sec *sec;
	int err;

	snprintf(name, sizeof(name), "gic.cpu%u", v->id);
	sec = snap_add(s, name);
	if (!sec)
		return -ENOMEM;
	err = bank_cpu(vm, v, &b);
	for (size_t i = 0; !err && b.version == 3 && i < ARRAY_SIZE(gicr_bases); i++)
		err = reg_save(&b, b.group, &gicr_bases[i], sec);
	for (size_t i = 0; !err && i < ARRAY_SIZE(gic_blocks); i++)
		if (block_used(&gic_blocks[i], b.version, false))
			err = block_save(&b, &gic_blocks[i], 0, 32, sec);
	if (err)
		return err;
	if (b.version == 3)
		return icc_save(&b, sec) ?: reg_save(&b, b.group, &gicr_ctlr, sec);
	err = block_save(&b, &gicv2_sgi_pending, 0, 16, sec);
	for (size_t i = 0; !err && i < ARRAY_SIZE(gicc_regs); i++)
		err = reg_save(&b, KVM_DEV_ARM_VGIC_GRP_CPU_REGS, &gicc_regs[i], sec);
	return err;
}

static int restore_gic_cpu(const struct rst *r, const struct vcpu *v)
{
	char name[SNAP_NAME_MAX];
	const struct snap_sec *sec;
	struct gic_bank b;
	int err;

	snprintf(name, sizeof(name), "gic.cpu%u", v->id);
	sec = snap_need(r->s, name);
	if (!sec)
		return -EINVAL;
	err = bank_cpu(r->vm, v, &b);
	for (size_t i = 0; !err && b.version == 3 && i < ARRAY_SIZE(gicr_bases); i++)
		err = reg_restore(r, &b, b.group, &gicr_bases[i], sec);
	for (size_t i = 0; !err && i < ARRAY_SIZE(gic_blocks); i++)
		if (block_used(&gic_blocks[i], b.version, false))
			err = block_restore(r, &b, &gic_blocks[i], 0, 32, sec);
	if (err)
		return err;
	if (b.version == 3)
		return icc_restore(r, &b, sec) ?: reg_restore(r, &b, b.group, &gicr_ctlr, sec);
	err = block_restore(r, &b, &gicv2_sgi_pending, 0, 16, sec);
	for (size_t i = 0; !err && i < ARRAY_SIZE(gicc_regs); i++)
		err = reg_restore(r, &b, KVM_DEV_ARM_VGIC_GRP_CPU_REGS, &gicc_regs[i], sec);
	return err;
}

/* Have KVM write the LPI pending bits into the guest's pending tables (GICv3 with an ITS). */
static int flush_pending_tables(const struct vm *vm)
{
	int err;

	if (gic_version(vm) != 3 || avm(vm)->its_fd < 0)
		return 0;
	err = arm64_set_attr(avm(vm)->gic_fd, KVM_DEV_ARM_VGIC_GRP_CTRL,
			     KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES, NULL);
	if (err)
		log_error("GICv3: KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES: %s", strerror(-err));
	return err;
}

/* Section gic (the distributor, shared interrupts) and gic.cpuN for every vCPU. */
static int save_gic(struct vm *vm, struct snap *s)
{
	const unsigned nr_irqs = gic_nr_irqs(vm);
	struct snap_sec *sec;
	struct gic_bank b;
	int err = flush_pending_tables(vm);

	if (err)
		return err;
	if (nr_irqs > GIC_MAX_IRQS || nr_irqs % 32) {
		log_error("vGIC: %u interrupts, which no GIC has", nr_irqs);
		return -EINVAL;
	}
	sec = snap_add(s, "gic");
	if (!sec)
		return -ENOMEM;
	err = snap_put_u64(sec, "version", (uint64_t)gic_version(vm));
	err = err ?: snap_put_u64(sec, "nr_irqs", nr_irqs);
	err = err ?: bank_dist(vm, &b);
	for (size_t i = 0; !err && i < ARRAY_SIZE(gicd_regs); i++)
		err = reg_save(&b, b.group, &gicd_regs[i], sec);
	for (size_t i = 0; !err && i < ARRAY_SIZE(gic_blocks); i++)
		if (block_used(&gic_blocks[i], b.version, true))
			err = block_save(&b, &gic_blocks[i], GIC_SPI_BASE, nr_irqs - GIC_SPI_BASE,
					 sec);
	for (unsigned i = 0; !err && i < vm->nvcpus; i++)
		err = save_gic_cpu(vm, &vm->vcpus[i], s);
	return err;
}

/* The distributor, then each vCPU's interrupts and CPU interface (GICv3: LPIs enabled last). */
static int restore_gic(const struct rst *r)
{
	const unsigned nr_irqs = gic_nr_irqs(r->vm);
	const struct snap_sec *sec = snap_need(r->s, "gic");
	struct gic_bank b;
	int err;

	if (!sec)
		return -EINVAL;
	err = bank_dist(r->vm, &b);
	for (size_t i = 0; !err && i < ARRAY_SIZE(gicd_regs); i++)
		err = reg_restore(r, &b, b.group, &gicd_regs[i], sec);
	for (size_t i = 0; !err && i < ARRAY_SIZE(gic_blocks); i++)
		if (block_used(&gic_blocks[i], b.version, true))
			err = block_restore(r, &b, &gic_blocks[i], GIC_SPI_BASE,
					    nr_irqs - GIC_SPI_BASE, sec);
	for (unsigned i = 0; !err && i < r->vm->nvcpus; i++)
		err = restore_gic_cpu(r, &r->vm->vcpus[i]);
	return err;
}

/*
 * The GICv3 ITS: its registers (64-bit values through KVM_DEV_ARM_VGIC_GRP_ITS_REGS), its
 * tables in guest RAM. Restore order (arm-vgic-its.rst): GITS_CBASER (which resets CREADR
 * and CWRITER), the other registers with GITS_IIDR (the table ABI) before the tables, then
 * KVM_DEV_ARM_ITS_RESTORE_TABLES, GITS_CTLR last.
 */
static const struct {
	const char *field;
	uint16_t off;
} its_regs[] = {
	{"cbaser", GITS_CBASER},   {"iidr", GITS_IIDR},	      {"creadr", GITS_CREADR},
	{"cwriter", GITS_CWRITER}, {"baser0", GITS_BASER(0)}, {"baser1", GITS_BASER(1)},
	{"baser2", GITS_BASER(2)}, {"baser3", GITS_BASER(3)}, {"baser4", GITS_BASER(4)},
	{"baser5", GITS_BASER(5)}, {"baser6", GITS_BASER(6)}, {"baser7", GITS_BASER(7)},
	{"ctlr", GITS_CTLR},
};

static int its_rw(int fd, uint16_t off, uint64_t *v, bool write, const char *field)
{
	int err = write ? arm64_set_attr(fd, KVM_DEV_ARM_VGIC_GRP_ITS_REGS, off, v)
			: arm64_get_attr(fd, KVM_DEV_ARM_VGIC_GRP_ITS_REGS, off, v);

	if (err)
		log_error("GICv3 ITS: %s register %s (0x%x): %s", write ? "writing" : "reading",
			  field, off, strerror(-err));
	return err;
}

static int its_ctrl(int fd, uint64_t attr, const char *what)
{
	int err = arm64_set_attr(fd, KVM_DEV_ARM_VGIC_GRP_CTRL, attr, NULL);

	if (err)
		log_error("GICv3 ITS: %s: %s", what, strerror(-err));
	return err;
}

/* Section its, after KVM wrote the ITS tables into guest RAM. */
static int save_its(struct vm *vm, struct snap *s)
{
	const int fd = avm(vm)->its_fd;
	struct snap_sec *sec;
	int err;

	if (fd < 0)
		return 0;
	err = its_ctrl(fd, KVM_DEV_ARM_ITS_SAVE_TABLES, "KVM_DEV_ARM_ITS_SAVE_TABLES");
	if (err)
		return err;
	sec = snap_add(s, "its");
	if (!sec)
		return -ENOMEM;
	for (size_t i = 0; !err && i < ARRAY_SIZE(its_regs); i++) {
		uint64_t v;

		err = its_rw(fd, its_regs[i].off, &v, false, its_regs[i].field);
		err = err ?: snap_put_u64(sec, its_regs[i].field, v);
	}
	return err;
}

static int restore_its(const struct rst *r)
{
	const int fd = avm(r->vm)->its_fd;
	const size_t n = ARRAY_SIZE(its_regs);
	const struct snap_sec *sec;
	uint64_t v[ARRAY_SIZE(its_regs)];
	int err = 0;

	if (fd < 0)
		return 0;
	sec = snap_need(r->s, "its");
	if (!sec)
		return -EINVAL;
	for (size_t i = 0; !err && i < n; i++)
		err = snap_need_u64(sec, its_regs[i].field, UINT64_MAX, &v[i]);
	if (err || r->dry)
		return err;
	for (size_t i = 0; !err && i < n - 1; i++)
		err = its_rw(fd, its_regs[i].off, &v[i], true, its_regs[i].field);
	err = err
		      ?: its_ctrl(fd, KVM_DEV_ARM_ITS_RESTORE_TABLES,
				  "KVM_DEV_ARM_ITS_RESTORE_TABLES (the tables in guest RAM do not "
				  "match the saved registers?)");
	return err ?: its_rw(fd, its_regs[n - 1].off, &v[n - 1], true, its_regs[n - 1].field);
}

/* The state's machine is this VM's: vCPUs, GIC version and size, ITS. -EINVAL said if not. */
static int check_shape(const struct vm *vm, const struct snap *s)
{
	const struct snap_sec *gic = snap_need(s, "gic");
	const bool its = avm(vm)->its_fd >= 0;
	unsigned n = devstate_count(s, "vcpu%u");
	uint64_t version, nr_irqs;

	if (n != vm->nvcpus) {
		log_error("snapshot: the state holds %u vCPUs, this machine has %u", n, vm->nvcpus);
		return -EINVAL;
	}
	if (!gic || snap_need_u64(gic, "version", 3, &version) ||
	    snap_need_u64(gic, "nr_irqs", GIC_MAX_IRQS, &nr_irqs))
		return -EINVAL;
	if (version != (uint64_t)gic_version(vm)) {
		log_error("snapshot: the state holds a GICv%llu, this machine has a GICv%d",
			  (unsigned long long)version, gic_version(vm));
		return -EINVAL;
	}
	if (nr_irqs != gic_nr_irqs(vm)) {
		log_error("snapshot: the state's GIC has %llu interrupts, this machine's %u",
			  (unsigned long long)nr_irqs, gic_nr_irqs(vm));
		return -EINVAL;
	}
	if (!!snap_find(s, "its") != its) {
		log_error("snapshot: the state has %s GICv3 ITS, this machine %s", its ? "no" : "a",
			  its ? "has one" : "has none");
		return -EINVAL;
	}
	return 0;
}

/* One restore pass: checking (r->dry) or writing, in the order KVM needs. */
static int restore_pass(struct rst *r)
{
	int err = clock_load(r);

	err = err ?: restore_vcpus(r);
	err = err ?: restore_gic(r);
	return err ?: restore_its(r);
}

int kvm_arch_save(struct vm *vm, struct snap *s)
{
	int err = save_clock(vm, s);

	for (unsigned i = 0; !err && i < vm->nvcpus; i++)
		err = save_vcpu(&vm->vcpus[i], s);
	err = err ?: save_gic(vm, s);
	return err ?: save_its(vm, s);
}

int kvm_arch_restore(struct vm *vm, const struct snap *s)
{
	struct rst r = {.vm = vm, .s = s, .dry = true};
	int err = check_shape(vm, s);

	if (err)
		return err;
	r.regs = calloc(vm->nvcpus, sizeof(*r.regs));
	if (!r.regs)
		return -ENOMEM;
	for (unsigned i = 0; !err && i < vm->nvcpus; i++)
		err = reg_list(&vm->vcpus[i], &r.regs[i]);
	err = err ?: restore_pass(&r); /* everything checked; KVM untouched */
	if (!err) {
		r.dry = false;
		err = restore_pass(&r);
	}
	for (unsigned i = 0; i < vm->nvcpus; i++)
		free(r.regs[i]);
	free(r.regs);
	if (!err)
		log_info("snapshot: %u vCPUs and the GICv%d restored; guest counter resumed at "
			 "%llu (%s)",
			 vm->nvcpus, gic_version(vm), (unsigned long long)r.counter,
			 r.counter_offset ? "VM counter offset" : "per-vCPU counter writes");
	return err;
}
