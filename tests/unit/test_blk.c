/* Unit tests: virtio-blk request layout parsing. */
#include <endian.h>
#include <errno.h>

#include "test.h"
#include "virtio/blk.h"

struct hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

void test_blk(void)
{
	struct hdr h = {htole32(1), 0, htole64(77)};
	uint8_t data[1024], data2[512], status[4], split[16];
	struct iovec iov[4];
	struct virtq_chain c = {.iov = iov, .iov_max = 4};
	struct blk_request r;

	/* OUT: header, data, status. */
	iov[0] = (struct iovec){&h, 16};
	iov[1] = (struct iovec){data, 1024};
	iov[2] = (struct iovec){status, 1};
	c.nout = 2;
	c.nin = 1;
	c.out_len = 1040;
	c.in_len = 1;
	CHECK(blk_parse(&c, &r) == 0);
	CHECK_EQ(r.type, 1);
	CHECK_EQ(r.sector, 77);
	CHECK(r.status == status);
	CHECK(r.ndata == 1 && r.data[0].iov_base == data && r.data_len == 1024);

	/* IN with the status sharing the last writable buffer, header split in two. */
	memcpy(split, &h, 16);
	split[0] = 0; /* type IN */
	iov[0] = (struct iovec){split, 10};
	iov[1] = (struct iovec){split + 10, 6};
	iov[2] = (struct iovec){data2, 512};
	iov[3] = (struct iovec){data, 513};
	c.nout = 2;
	c.nin = 2;
	c.out_len = 16;
	c.in_len = 1025;
	CHECK(blk_parse(&c, &r) == 0);
	CHECK_EQ(r.type, 0);
	CHECK_EQ(r.sector, 77);
	CHECK(r.status == data + 512);
	CHECK(r.ndata == 2 && r.data_len == 1024 && r.data[1].iov_len == 512);

	/* OUT whose data shares the header's buffer. */
	memcpy(data, &h, 16);
	iov[0] = (struct iovec){data, 16 + 512};
	iov[1] = (struct iovec){status, 1};
	c.nout = 1;
	c.nin = 1;
	c.out_len = 528;
	c.in_len = 1;
	CHECK(blk_parse(&c, &r) == 0);
	CHECK(r.ndata == 1 && r.data[0].iov_base == data + 16 && r.data_len == 512);

	/* FLUSH: header and status only. */
	h.type = htole32(4);
	iov[0] = (struct iovec){&h, 16};
	iov[1] = (struct iovec){status, 1};
	c.out_len = 16;
	CHECK(blk_parse(&c, &r) == 0);
	CHECK(r.type == 4 && r.data_len == 0);

	/* No status byte, or a short header: not a request. */
	c.nin = 0;
	c.in_len = 0;
	c.out_len = 16;
	CHECK_EQ(blk_parse(&c, &r), -EINVAL);
	iov[0] = (struct iovec){&h, 8};
	iov[1] = (struct iovec){status, 1};
	c.nout = 1;
	c.nin = 1;
	c.out_len = 8;
	c.in_len = 1;
	CHECK_EQ(blk_parse(&c, &r), -EINVAL);
}
