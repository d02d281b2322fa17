/*
 * libFuzzer target: the descriptor walker and the virtio-blk request parser over guest memory
 * the fuzzer controls. Every byte of every accepted buffer is touched, so ASan reports any
 * buffer the walker hands out that is not wholly inside guest RAM.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/blk.h"
#include "virtio/virtq.h"

#define GPA  0x10000ull
#define SIZE 0x8000u
#define NUM  16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Guest RAM is exactly SIZE bytes of heap: ASan sees any overrun. */
	uint8_t *ram = malloc(SIZE);
	struct guest_mem mem = {.hva = ram, .gpa = GPA, .size = SIZE};
	struct virtq q = {.num_max = NUM};
	struct iovec iov[NUM + 2];
	volatile uint8_t sink = 0;

	memset(ram, 0, SIZE);
	memcpy(ram, data + (size ? 1 : 0), size > SIZE + 1 ? SIZE : (size ? size - 1 : 0));
	virtq_reset(&q);
	q.num = NUM;
	q.desc_gpa = GPA;
	q.avail_gpa = GPA + 0x100;
	q.used_gpa = GPA + 0x200;
	q.indirect = size && (data[0] & 1);
	q.event_idx = size && (data[0] & 2);
	if (virtq_start(&q, &mem) == 0) {
		for (int n = 0; n < 64; n++) {
			struct virtq_chain c = {.iov = iov, .iov_max = NUM + 2};
			struct blk_request r;
			int ret = virtq_pop(&q, &mem, &c);

			if (ret <= 0)
				break;
			for (unsigned i = 0; i < c.nout + c.nin; i++)
				for (size_t k = 0; k < c.iov[i].iov_len; k++)
					sink ^= ((uint8_t *)c.iov[i].iov_base)[k];
			if (blk_parse(&c, &r) == 0) {
				*r.status = 0;
				for (unsigned i = 0; i < r.ndata; i++)
					memset(r.data[i].iov_base, 0xa5, r.data[i].iov_len);
			}
			virtq_push(&q, c.head, c.in_len);
			(void)virtq_should_notify(&q);
		}
		(void)virtq_enable_notify(&q);
	}
	(void)sink;
	free(ram);
	return 0;
}
