/*
 * snapshot: a paused VM saved as a state file (snapfile.h: the machine description, vCPUs,
 * interrupt controller, devices) and a memory file (guest RAM, holes where it is zero); a VM
 * built again from them in a new process, its RAM mapping the memory file copy-on-write.
 */
#ifndef MICROVM_SNAPSHOT_H
#define MICROVM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct machine;
struct machine_override;
struct snap;
struct vm;

#define SNAPSHOT_STATE_VERSION 1 /* the meaning of the sections (the file has its own) */

/* What snapshot_save did, for the API's answer and the logs. */
struct snapshot_stats {
	uint64_t ram_bytes;	/* guest RAM */
	uint64_t written_bytes; /* of it written to the memory file (the rest are holes) */
	uint64_t save_ns;	/* from the request to both files complete */
};

/*
 * Save the paused VM as files state and mem (plain names) in directory dirfd: the memory file
 * first, the state file last, each written under a temporary name and renamed when complete
 * (a failed save leaves neither new file). 0, -EBUSY when the VM is not paused, or -errno
 * (said).
 */
int snapshot_save(struct vm *vm, int dirfd, const char *state, const char *mem,
		  struct snapshot_stats *st);

/* A snapshot opened for a restore. */
struct snapshot_in {
	struct snap *state;
	char *state_path;
	char *mem_path;
	int mem_fd;
	uint64_t ram_size;
};

/*
 * Read and check the state file and open the memory file (mem_path, or the one the state
 * names, beside it): a host that cannot run it (architecture, page size) or a damaged or
 * mismatched pair is refused, said, before anything starts. 0 or -errno.
 */
int snapshot_open(struct snapshot_in *in, const char *state_path, const char *mem_path);
/*
 * Load the snapshot's machine description, with the overrides ov (only keys a restore can
 * change: a device type's restore_keys, such as disk paths, TAP names, the data path, a NIC's
 * MAC address, and the host-side [machine] keys; others refused, said). 0 or -EINVAL.
 */
int snapshot_machine(struct snapshot_in *in, const struct machine_override *ov, size_t nov,
		     struct machine *m);
/* Set the saved state into vm, built by vm_create_restored from in->mem_fd. 0 or -errno. */
int snapshot_restore(struct snapshot_in *in, struct vm *vm);
/* Release what snapshot_open took. */
void snapshot_close(struct snapshot_in *in);
/* Is name a plain file name a snapshot may be written as (no '/', not "." or "..")? */
bool snapshot_valid_name(const char *name);

#endif
