/*
 * api: Firecracker's REST resources over microvm's machine description. A request before the
 * start fills overrides of the architecture's default machine, checked by the same code as an
 * INI file; InstanceStart loads them to run; after it, the API reports, pauses and stops.
 */
#ifndef MICROVM_API_API_H
#define MICROVM_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/http.h"
#include "virtio/balloon.h"

struct machine;
struct machine_override;

enum api_state { API_NOT_STARTED, API_RUNNING, API_PAUSED };

/* What the API asks of the running VM's balloon. */
enum api_balloon_op {
	API_BALLOON_GET,      /* read its state only */
	API_BALLOON_TARGET,   /* set the target to value MiB */
	API_BALLOON_INTERVAL, /* ask for statistics every value seconds */
};

/* What the API asks of the monitor (main.c; the fuzz target and tests fake it). */
struct api_ops {
	/* Build and start a VM from m (loaded to run; owned by the callee from then). 0 or -1. */
	int (*start)(void *opaque, struct machine *m);
	/* Park every vCPU and stop every device's queues (vm_pause). 0 or -errno. */
	int (*pause)(void *opaque);
	/* Undo pause. 0 or -errno. */
	int (*resume)(void *opaque);
	/* Stop the VM (the monitor then exits, status 4). */
	void (*stop)(void *opaque);
	/*
	 * PUT /snapshot/create on the paused VM: save it as the files state and mem (the
	 * request's paths, checked by the callee against its snapshot directory). 0 or -errno
	 * (said).
	 */
	int (*snapshot)(void *opaque, const char *state, const char *mem);
	/*
	 * PUT /snapshot/load before any start: build and start the VM the snapshot holds
	 * (paused unless resume), its machine with the overrides ov. On success *m is the
	 * machine that runs (owned by the callee). 0 or -1 (said).
	 */
	int (*load)(void *opaque, const char *state, const char *mem, bool resume,
		    const struct machine_override *ov, size_t nov, const struct machine **m);
	/*
	 * The running VM's balloon, on the API's thread (the event loop's): do op with value
	 * (under the device's lock, as a vCPU's register access would), then read its state
	 * into *info. 0, -ENODEV (no balloon) or -EINVAL (the value refused).
	 */
	int (*balloon)(void *opaque, enum api_balloon_op op, uint32_t value,
		       struct balloon_info *info);
};

struct api_res;

struct api {
	const char *id;	      /* the instance's name, for GET / */
	const char *base;     /* the default machine's INI text (pre-boot requests fill it) */
	const char *basename; /* its name in messages */
	const struct machine_override *base_ov; /* the command line's --set on it */
	size_t nbase_ov;
	char *base_cmdline; /* its [boot] cmdline, the start of the guest's */
	char **reserved;    /* its sections: names a drive or NIC cannot take */
	size_t nreserved;
	struct api_res *res; /* PUT resources, in arrival order */
	size_t nres;
	int state;		       /* enum api_state */
	const struct machine *running; /* the machine that runs, once started */
	struct api_ops ops;
	void *opaque;
	uint64_t pause_ns[64], resume_ns[64]; /* the latest latencies, a ring (GET /machine) */
	unsigned npause, nresume;
};

/*
 * Set up for a VM not yet started, built on base (INI text called name, with the command
 * line's overrides base_ov, kept by the caller) once InstanceStart comes. -EINVAL when that
 * does not load (said).
 */
int api_init(struct api *a, const char *id, const char *name, const char *base,
	     const struct machine_override *base_ov, size_t nbase_ov, const struct api_ops *ops,
	     void *opaque);
/* Serve a VM that was started from a file: pre-boot resources answer 400. */
void api_init_running(struct api *a, const char *id, const struct machine *m,
		      const struct api_ops *ops, void *opaque);
/* Answer one request (the http_handler). */
void api_handle(void *api, const char *method, const char *url, const char *body, size_t len,
		struct http_reply *r);
/* Load the machine the requests so far describe, not to run (as each PUT checks it). -errno. */
int api_machine(struct api *a, struct machine *m);
/* Release what the API holds. */
void api_free(struct api *a);

#endif
