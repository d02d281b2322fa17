/* Unit tests: the generated device tree, parsed back with libfdt. */
#include <libfdt.h>
#include <stdlib.h>

#include "boot.h"
#include "arch/arm64/arm64.h"
#include "machine.h"
#include "test.h"

static const fdt32_t *prop(const void *fdt, const char *path, const char *name, int *len)
{
	int node = fdt_path_offset(fdt, path);

	if (node < 0)
		return NULL;
	return fdt_getprop(fdt, node, name, len);
}

static uint64_t cells64(const fdt32_t *p, int i)
{
	return (uint64_t)fdt32_to_cpu(p[i]) << 32 | fdt32_to_cpu(p[i + 1]);
}

static void check_machine(const char *path, int version, unsigned ncpus)
{
	struct machine m;
	struct boot_layout bl = {.initrd_addr = 0x7f000000, .initrd_size = 0x123456};
	void *fdt = NULL;
	size_t len;
	const fdt32_t *p;
	const char *s;
	int n, node, count = 0;
	uint32_t gic_phandle;

	if (!test_machine_load(&m, path, NULL, 0))
		return;
	CHECK(arm64_fdt_build(&m, &bl, &fdt, &len) == 0);
	if (!fdt) {
		machine_free(&m);
		return;
	}
	CHECK(fdt_check_header(fdt) == 0);
	CHECK_EQ(fdt_totalsize(fdt), len);

	/* /chosen: console from stdout-path through the serial0 alias, initrd range. */
	s = (const char *)prop(fdt, "/chosen", "stdout-path", &n);
	CHECK(s && !strcmp(s, "serial0"));
	s = (const char *)prop(fdt, "/aliases", "serial0", &n);
	CHECK(s && !strcmp(s, "/serial@9000000"));
	s = (const char *)prop(fdt, "/chosen", "bootargs", &n);
	CHECK(s && !strcmp(s, "panic=-1"));
	p = prop(fdt, "/chosen", "linux,initrd-start", &n);
	CHECK(p && n == 8 && cells64(p, 0) == 0x7f000000);
	p = prop(fdt, "/chosen", "linux,initrd-end", &n);
	CHECK(p && n == 8 && cells64(p, 0) == 0x7f123456);

	/* memory */
	p = prop(fdt, "/memory@40000000", "reg", &n);
	CHECK(p && n == 16 && cells64(p, 0) == 0x40000000 && cells64(p, 2) == 1ull << 30);

	/* cpus: one node per vCPU, reg = MPIDR affinity, PSCI enable method */
	node = fdt_path_offset(fdt, "/cpus");
	CHECK(node >= 0);
	fdt_for_each_subnode(n, fdt, node)
	{
		const fdt32_t *reg = fdt_getprop(fdt, n, "reg", NULL);

		CHECK(reg && fdt32_to_cpu(*reg) == (uint32_t)count);
		s = fdt_getprop(fdt, n, "enable-method", NULL);
		CHECK(s && !strcmp(s, "psci"));
		count++;
	}
	CHECK_EQ(count, ncpus);
	s = (const char *)prop(fdt, "/psci", "method", &n);
	CHECK(s && !strcmp(s, "hvc"));

	/* The GIC is the root interrupt parent, through its phandle. */
	node = fdt_node_offset_by_prop_value(fdt, -1, "interrupt-controller", NULL, 0);
	CHECK(node >= 0);
	gic_phandle = fdt_get_phandle(fdt, node);
	CHECK(gic_phandle != 0);
	p = prop(fdt, "/", "interrupt-parent", &n);
	CHECK(p && fdt32_to_cpu(*p) == gic_phandle);
	CHECK(fdt_node_check_compatible(fdt, node, version == 2 ? "arm,gic-400" : "arm,gic-v3") ==
	      0);
	p = fdt_getprop(fdt, node, "#interrupt-cells", &n);
	CHECK(p && fdt32_to_cpu(*p) == 3);
	p = fdt_getprop(fdt, node, "reg", &n);
	CHECK(p && n == 32 && cells64(p, 0) == 0x08000000);
	if (version == 2)
		CHECK(p && cells64(p, 4) == 0x08010000 && cells64(p, 6) == 0x2000);
	else
		CHECK(p && cells64(p, 4) == 0x080a0000 && cells64(p, 6) == 0xf60000);

	/* Timer PPIs: 13, 14, 11, 10, level-high, with the CPU mask on GICv2 only. */
	p = prop(fdt, "/timer", "interrupts", &n);
	CHECK(p && n == 48);
	if (p && n == 48) {
		uint32_t flags = 4 | (version == 2 ? ((1u << ncpus) - 1) << 8 : 0);

		CHECK(fdt32_to_cpu(p[0]) == 1 && fdt32_to_cpu(p[1]) == 13);
		CHECK(fdt32_to_cpu(p[4]) == 14 && fdt32_to_cpu(p[7]) == 11 &&
		      fdt32_to_cpu(p[10]) == 10);
		CHECK_EQ(fdt32_to_cpu(p[2]), flags);
	}

	/* UART: SPI 1, level-high; reg as in the INI file. */
	p = prop(fdt, "/serial@9000000", "interrupts", &n);
	CHECK(p && n == 12 && fdt32_to_cpu(p[0]) == 0 && fdt32_to_cpu(p[1]) == 1 &&
	      fdt32_to_cpu(p[2]) == 4);
	p = prop(fdt, "/serial@9000000", "reg", &n);
	CHECK(p && n == 16 && cells64(p, 0) == 0x09000000);
	CHECK(fdt_node_check_compatible(fdt, fdt_path_offset(fdt, "/serial@9000000"), "ns16550a") ==
	      0);
	free(fdt);
	machine_free(&m);
}

static void no_initrd(void)
{
	struct machine m;
	void *fdt = NULL;
	size_t len;
	int n;
	char *sets[] = {"machine.vcpus=1"};

	if (!test_machine_load(&m, "machines/rpi5.ini", sets, 1))
		return;
	CHECK(arm64_fdt_build(&m, NULL, &fdt, &len) == 0);
	CHECK(fdt && prop(fdt, "/chosen", "linux,initrd-start", &n) == NULL);
	CHECK(fdt && prop(fdt, "/cpus/cpu@1", "reg", &n) == NULL);
	free(fdt);
	machine_free(&m);
}

/* [machine] pmu: a PMUv3 node with its overflow PPI (7, level, the CPU mask on GICv2). */
static void pmu(const char *path, uint32_t flags)
{
	struct machine m;
	void *fdt = NULL;
	size_t len;
	const fdt32_t *p;
	int n;
	char *sets[] = {"machine.pmu=on"};

	if (!test_machine_load(&m, path, NULL, 0))
		return;
	CHECK(arm64_fdt_build(&m, NULL, &fdt, &len) == 0);
	CHECK(fdt && fdt_path_offset(fdt, "/pmu") < 0); /* off unless asked */
	free(fdt);
	machine_free(&m);
	fdt = NULL;
	if (!test_machine_load(&m, path, sets, 1))
		return;
	CHECK(arm64_fdt_build(&m, NULL, &fdt, &len) == 0);
	CHECK(fdt &&
	      fdt_node_check_compatible(fdt, fdt_path_offset(fdt, "/pmu"), "arm,armv8-pmuv3") == 0);
	p = fdt ? prop(fdt, "/pmu", "interrupts", &n) : NULL;
	CHECK(p && n == 12 && fdt32_to_cpu(p[0]) == 1 && fdt32_to_cpu(p[1]) == 7 &&
	      fdt32_to_cpu(p[2]) == flags);
	free(fdt);
	machine_free(&m);
}

void test_fdt(void)
{
	check_machine("machines/rpi5.ini", 2, 4);
	check_machine("machines/virt-gicv3.ini", 3, 4);
	no_initrd();
	pmu("machines/rpi5.ini", 0xf04);
	pmu("machines/virt-gicv3.ini", 4);
}
