/* virtio-net frames: header checks and RX placement, with no device state (unit-tested). */
#ifndef MICROVM_VIRTIO_NET_FRAME_H
#define MICROVM_VIRTIO_NET_FRAME_H

#include <linux/virtio_net.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/virtq.h"

/* virtio 1.x: every frame carries the 12-byte header (num_buffers included). */
#define NET_HDR_LEN   ((int)sizeof(struct virtio_net_hdr_v1))
#define NET_ETH_HLEN  14
#define NET_VLAN_HLEN 4
/* Largest frame a GSO header may describe: a 64 KiB IP packet plus Ethernet and VLAN headers. */
#define NET_MAX_GSO_FRAME (65535 + NET_ETH_HLEN + NET_VLAN_HLEN)

/*
 * Check a header the guest sent with a frame of frame_len bytes against the negotiated
 * features (the offloads it may ask for) and the MTU; clears what the TAP must not see.
 * 0, or -EINVAL with *why saying what is wrong (the frame is then dropped).
 */
int net_tx_header(struct virtio_net_hdr_v1 *h, uint64_t features, size_t frame_len, uint32_t mtu,
		  const char **why);
/*
 * Check a header the TAP wrote for a received frame against what the guest negotiated,
 * clearing hints it did not ask for. 0, or -EINVAL when the frame cannot be given to it.
 */
int net_rx_header(struct virtio_net_hdr_v1 *h, uint64_t features);
/* The TUN_F_* offloads the TAP may use towards a guest with these negotiated features. */
unsigned net_tap_offloads(uint64_t features);
/*
 * Copy a received frame (header first, len bytes) into n popped write-only chains, in order:
 * with mergeable buffers as many chains as it takes (num_buffers set in the header), else
 * the first chain alone. Fills used[i] with the bytes put in chain i. Returns the number of
 * chains used, -ENOBUFS when the chains hold less than the frame (more are needed), or
 * -EMSGSIZE when without mergeable buffers the first chain is too small.
 */
int net_rx_scatter(const struct virtq_chain *chains, unsigned n, uint8_t *frame, size_t len,
		   bool mergeable, uint32_t *used);
/* Parse "02:00:00:aa:bb:cc" (hex digits of either case) into a unicast, non-zero MAC. 0 or -1. */
int net_parse_mac(const char *s, uint8_t mac[6]);
/* A locally administered unicast MAC derived from the machine and NIC names (stable). */
void net_default_mac(const char *machine, const char *nic, uint8_t mac[6]);

#endif
