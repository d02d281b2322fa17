/* layout: the resolved machine as JSON, for programs (--check --json, the API's GET /machine). */
#ifndef MICROVM_LAYOUT_H
#define MICROVM_LAYOUT_H

#include <jansson.h>
#include <stdio.h>

struct machine;

/*
 * The machine m as loaded: name, architecture, vCPUs, memory, boot files, the virtio-mmio and
 * PCI windows, every device (type, transport, where it sits, its interrupt, its keys), every
 * region and interrupt line, and the other sections' keys. A new reference.
 */
json_t *layout_json(const struct machine *m);
/* Write layout_json(m) to out, indented, with a final newline. 0 or -1. */
int layout_print_json(const struct machine *m, FILE *out);

#endif
