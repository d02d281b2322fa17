/* virtio-net frames: header checks and RX placement (no device state; unit-tested). */
#include "virtio/net_frame.h"

#include <endian.h>
#include <errno.h>
#include <ctype.h>
#include <linux/if_tun.h>
#include <string.h>

#include "iov.h"

#define F(bit) (1ull << VIRTIO_NET_F_##bit)

int net_tx_header(struct virtio_net_hdr_v1 *h, uint64_t features, size_t frame_len, uint32_t mtu,
		  const char **why)
{
	uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	uint16_t start = le16toh(h->csum_start), off = le16toh(h->csum_offset);

	*why = NULL;
	if (frame_len < NET_ETH_HLEN)
		*why = "frame shorter than an Ethernet header";
	else if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		*why = "unknown header flags";
	else if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !(features & F(CSUM)))
		*why = "checksum offload was not negotiated";
	else if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && (size_t)start + off + 2 > frame_len)
		*why = "checksum position outside the frame";
	else if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !(features & F(HOST_ECN)))
		*why = "ECN segmentation was not negotiated";
	else if (gso == VIRTIO_NET_HDR_GSO_NONE && (h->gso_type & VIRTIO_NET_HDR_GSO_ECN))
		*why = "ECN flag without segmentation";
	else if (gso == VIRTIO_NET_HDR_GSO_NONE &&
		 frame_len > (size_t)mtu + NET_ETH_HLEN + NET_VLAN_HLEN)
		*why = "frame larger than the MTU";
	else if (gso != VIRTIO_NET_HDR_GSO_NONE && gso != VIRTIO_NET_HDR_GSO_TCPV4 &&
		 gso != VIRTIO_NET_HDR_GSO_TCPV6)
		*why = "unsupported segmentation type";
	else if ((gso == VIRTIO_NET_HDR_GSO_TCPV4 && !(features & F(HOST_TSO4))) ||
		 (gso == VIRTIO_NET_HDR_GSO_TCPV6 && !(features & F(HOST_TSO6))))
		*why = "segmentation offload was not negotiated";
	else if (gso != VIRTIO_NET_HDR_GSO_NONE && !(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		*why = "segmentation without a partial checksum";
	else if (gso != VIRTIO_NET_HDR_GSO_NONE && !h->gso_size)
		*why = "segmentation with segment size 0";
	else if (gso != VIRTIO_NET_HDR_GSO_NONE && frame_len > NET_MAX_GSO_FRAME)
		*why = "segmentation frame larger than 64 KiB";
	if (*why)
		return -EINVAL;
	h->num_buffers = 0;
	return 0;
}

int net_rx_header(struct virtio_net_hdr_v1 *h, uint64_t features)
{
	uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;

	if (!(features & F(GUEST_CSUM))) {
		if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			return -EINVAL;
		h->flags &= ~VIRTIO_NET_HDR_F_DATA_VALID;
	}
	if (h->flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID))
		return -EINVAL;
	if ((gso == VIRTIO_NET_HDR_GSO_TCPV4 && !(features & F(GUEST_TSO4))) ||
	    (gso == VIRTIO_NET_HDR_GSO_TCPV6 && !(features & F(GUEST_TSO6))) ||
	    (gso != VIRTIO_NET_HDR_GSO_NONE && gso != VIRTIO_NET_HDR_GSO_TCPV4 &&
	     gso != VIRTIO_NET_HDR_GSO_TCPV6) ||
	    ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !(features & F(GUEST_ECN))))
		return -EINVAL;
	h->num_buffers = htole16(1);
	return 0;
}

unsigned net_tap_offloads(uint64_t features)
{
	unsigned fl = 0;

	if (!(features & F(GUEST_CSUM)))
		return 0;
	fl |= TUN_F_CSUM;
	if (features & F(GUEST_TSO4))
		fl |= TUN_F_TSO4;
	if (features & F(GUEST_TSO6))
		fl |= TUN_F_TSO6;
	if ((fl & (TUN_F_TSO4 | TUN_F_TSO6)) && (features & F(GUEST_ECN)))
		fl |= TUN_F_TSO_ECN;
	return fl;
}

int net_rx_scatter(const struct virtq_chain *chains, unsigned n, uint8_t *frame, size_t len,
		   bool mergeable, uint32_t *used)
{
	struct virtio_net_hdr_v1 *h = (struct virtio_net_hdr_v1 *)frame;
	size_t room = 0, done = 0;
	unsigned k = 0;

	if (!n)
		return -ENOBUFS;
	if (!mergeable) {
		if (chains[0].in_len < len)
			return -EMSGSIZE;
		k = 1;
	} else {
		while (k < n && room < len)
			room += chains[k++].in_len;
		if (room < len)
			return -ENOBUFS;
	}
	h->num_buffers = htole16(k);
	for (unsigned i = 0; i < k; i++) {
		const struct virtq_chain *c = &chains[i];

		used[i] = iov_from_buf(c->iov + c->nout, c->nin, 0, frame + done, len - done);
		done += used[i];
	}
	return (int)k;
}

static unsigned hex_digit(char c)
{
	return isdigit((unsigned char)c) ? (unsigned)(c - '0')
					 : (unsigned)(tolower((unsigned char)c) - 'a' + 10);
}

int net_parse_mac(const char *s, uint8_t mac[6])
{
	/* Exactly six pairs of hex digits and five colons (sscanf would take spaces, signs, 0x). */
	if (strlen(s) != 17)
		return -1;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)(hex_digit(s[3 * i]) << 4 | hex_digit(s[3 * i + 1]));
	if (mac[0] & 1)
		return -1; /* multicast */
	return (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) ? 0 : -1;
}

void net_default_mac(const char *machine, const char *nic, uint8_t mac[6])
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (const char *p = machine;; p++) {
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
		if (!*p)
			break;
	}
	for (const char *p = nic; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
	mac[0] = (mac[0] & 0xfc) | 0x02; /* locally administered, unicast */
}
