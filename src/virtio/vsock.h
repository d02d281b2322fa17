/* virtio-vsock: guest sockets bridged to host Unix sockets (Firecracker's protocol). */
#ifndef MICROVM_VIRTIO_VSOCK_H
#define MICROVM_VIRTIO_VSOCK_H

#include <stdint.h>

#include "device.h"
#include "mem.h"

struct loop;
struct virtio_dev;

#define VSOCK_HOST_CID	   2
#define VSOCK_RXQ	   0
#define VSOCK_TXQ	   1
#define VSOCK_EVQ	   2
#define VSOCK_BUF	   (256u * 1024) /* buf_alloc: guest bytes held per connection */
#define VSOCK_MAX_PKT	   (64u * 1024)	 /* payload of one packet, either way */
#define VSOCK_MAX_CONNS	   1024
#define VSOCK_LINE_MAX	   32	/* "CONNECT <port>\n" */
#define VSOCK_HANDSHAKE_MS 5000 /* a CONNECT line or the guest's answer, late past this: closed */

extern const struct device_ops virtio_vsock_ops;

/* The device's counters (tests, --verbose). */
struct vsock_stats {
	unsigned long dropped;	/* guest packets dropped: bad length, wrong CIDs */
	unsigned long resets;	/* RSTs sent to the guest */
	unsigned long rst_lost; /* RSTs not sent: their queue was full */
	unsigned long lies;	/* guest data beyond the credit it was given */
	unsigned long conns;	/* connections ever opened */
};

/*
 * Build the virtio side of the configured vsock dev over guest memory mem, its host sockets
 * watched by loop, without a transport (tests drive it directly). The listener on uds_path
 * must be open (vsock_listen). *vd (if vd) is the virtio device. -errno; vsock_stop undoes it.
 */
int vsock_start(struct device *dev, const struct guest_mem *mem, struct loop *loop,
		struct virtio_dev **vd);
/* Close every connection and free what vsock_start made (the listener stays). */
void vsock_stop(struct device *dev);
/* Create the listening socket on uds_path (a stale socket there is replaced). -errno (said). */
int vsock_listen(struct device *dev);
/* Close the listening socket. */
void vsock_unlisten(struct device *dev);
/* Tests: the counters, and the number of open connections. */
const struct vsock_stats *vsock_stats(const struct device *dev);
unsigned vsock_conns(const struct device *dev);
/* Tests and restore: tell the guest its connections are gone (TRANSPORT_RESET event). */
void vsock_transport_reset(struct device *dev);

#endif
