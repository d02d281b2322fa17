/* devtree: builds the guest's flattened device tree from the machine and its device registry. */
#ifndef MICROVM_DEVTREE_H
#define MICROVM_DEVTREE_H

#include <stddef.h>
#include <stdint.h>

struct boot_layout;
struct machine;

/* Build the DTB for m (initrd range from bl, may be NULL). Returns -errno; caller frees *blob. */
int fdt_build(const struct machine *m, const struct boot_layout *bl, void **blob, size_t *len);
/* Add "NAME@BASE" under the root with reg = <BASE SIZE>; returns its offset or a libfdt error. */
int fdt_add_mmio_node(void *fdt, const char *name, uint64_t base, uint64_t size);
/* Make node path the console: /aliases serial0 and /chosen stdout-path. */
int fdt_set_console(void *fdt, int node);

#endif
