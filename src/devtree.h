/* devtree: builds the arm64 guest's flattened device tree from the machine and its devices. */
#ifndef MICROVM_DEVTREE_H
#define MICROVM_DEVTREE_H

#include <stddef.h>
#include <stdint.h>

struct boot_layout;
struct machine;

/* Build the DTB for m (initrd range from bl, may be NULL). Returns -errno; caller frees *blob. */
int fdt_build(const struct machine *m, const struct boot_layout *bl, void **blob, size_t *len);
#endif
