/*
 * iobench: sequential and random block I/O timing for the virtio-blk benchmarks, run both
 * inside the guest (on /dev/vdX) and in the host (on the backing file).
 * usage: iobench read|write|randread FILE MIB [BLOCK_BYTES]
 * Prints: "iobench MODE BLOCK BYTES SECONDS MB/s IOPS". Uses O_DIRECT where the file allows.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *mode, *path;
	size_t bs, total, done = 0;
	unsigned long ops = 0;
	uint64_t rng = 88172645463325252ull;
	double t0, dt;
	void *buf;
	int fd, write_mode, rand_mode;

	if (argc < 4) {
		fprintf(stderr, "usage: iobench read|write|randread FILE MIB [BLOCK_BYTES]\n");
		return 2;
	}
	mode = argv[1];
	path = argv[2];
	total = strtoull(argv[3], NULL, 0) << 20;
	write_mode = !strcmp(mode, "write");
	rand_mode = !strcmp(mode, "randread");
	bs = argc > 4 ? strtoull(argv[4], NULL, 0) : (rand_mode ? 4096 : 1 << 20);
	if (!bs || total < bs || posix_memalign(&buf, 4096, bs))
		return 2;
	memset(buf, 0x5a, bs);
	fd = open(path, (write_mode ? O_WRONLY : O_RDONLY) | O_DIRECT);
	if (fd < 0)
		fd = open(path, write_mode ? O_WRONLY : O_RDONLY);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	t0 = now();
	while (done < total) {
		off_t off = done;
		ssize_t n;

		if (rand_mode) {
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			off = (off_t)(rng % (total / bs)) * bs;
		}
		n = write_mode ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off);
		if (n != (ssize_t)bs) {
			perror(mode);
			return 1;
		}
		done += bs;
		ops++;
	}
	if (write_mode && fdatasync(fd) < 0) {
		perror("fdatasync");
		return 1;
	}
	dt = now() - t0;
	printf("iobench %s %zu %zu %.3f %.1f %.0f\n", mode, bs, done, dt, done / dt / 1e6,
	       ops / dt);
	close(fd);
	return 0;
}
