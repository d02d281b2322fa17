/*
 * shorthand: the command line's --cpus, --memory, --disk and --net, each standing for the
 * overrides --set would make (a device: a whole section, named after those already there).
 */
#ifndef MICROVM_SHORTHAND_H
#define MICROVM_SHORTHAND_H

#include <stddef.h>

struct machine_override;

/* Is name ("disk", without the dashes) a shorthand option? */
int shorthand_is(const char *name);
/*
 * Check option name's argument arg and fill ov with what it stands for: a plain override
 * ("machine.vcpus=N") or a device section added when the machine loads (ov->apply). The
 * strings *ov points to are in *mem, which the caller frees after the machine. 0, or -1 with
 * why (the option's argument is wrong: "unknown option 'rw' (ro, transport=)").
 */
int shorthand_override(const char *name, const char *arg, struct machine_override *ov, char **mem,
		       char *why, size_t whylen);

#endif
