/*
 * fuzz_config: machine descriptions as any bytes (encodings, NULs, long lines, odd headers,
 * comments, numbers) read and checked as --check does: the reader before inih and inih agree
 * on every line, no error is left uncounted, and every key read is found again through the
 * section and key index.
 *
 * MICROVM_FUZZ_SEEDS=DIR writes a corpus into DIR and exits: the built-in machines of both
 * architectures, and the project's machines and bad machine descriptions when run from the top
 * of the tree (as make fuzz does).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch.h"
#include "log.h"
#include "machine.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int file_fd = -1;
static char file_path[64];

static void write_seed(const char *dir, const char *name, const char *text, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fwrite(text, 1, len, f) != len)
		abort();
	fclose(f);
}

/* Every file of dir ending in .ini, as a seed named after it. */
static void copy_seeds(const char *out, const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[4096], name[512], *text = NULL;
		size_t n = strlen(de->d_name), len = 0;
		FILE *f;

		if (n < 5 || strcmp(de->d_name + n - 4, ".ini"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		text = malloc(1 << 20);
		if (text)
			len = fread(text, 1, 1 << 20, f);
		fclose(f);
		snprintf(name, sizeof(name), "%s-%s", prefix, de->d_name);
		if (text)
			write_seed(out, name, text, len);
		free(text);
	}
	if (d)
		closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("MICROVM_FUZZ_SEEDS");
	static const char *const arches[] = {"arm64", "x86_64"};

	(void)argc;
	(void)argv;
	if (seeds) {
		for (size_t i = 0; i < 2; i++) {
			const char *text = arch_by_name(arches[i])->default_machine;

			write_seed(seeds, arches[i], text, strlen(text));
		}
		copy_seeds(seeds, "machines", "machine");
		copy_seeds(seeds, "tests/configs/bad", "bad");
		exit(0);
	}
	/* The machine is read from a file, as --config reads one: a memfd, by its path. */
	file_fd = memfd_create("fuzz_config", MFD_CLOEXEC);
	if (file_fd < 0)
		abort();
	snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
	log_capture(fopen("/dev/null", "w"));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct machine m;
	int err;

	if (ftruncate(file_fd, 0) < 0 || pwrite(file_fd, data, size, 0) != (ssize_t)size)
		abort();
	err = machine_load(&m, file_path, NULL, 0, false);
	/* An error is counted whenever one is said, and only then is the machine refused. */
	if ((err == -EINVAL) != (m.cfg.nerrors > 0) || (err && err != -EINVAL))
		abort();
	/* Each entry is the one its section and key find, each section the one its name does. */
	for (size_t i = 0; i < m.cfg.nentries; i++) {
		const struct cfg_entry *e = &m.cfg.entries[i];

		if (cfg_value(&m.cfg, e->section, e->key) != e->value)
			abort();
	}
	for (size_t i = 0; i < m.cfg.nsections; i++)
		if (cfg_section(&m.cfg, m.cfg.sections[i].name) != &m.cfg.sections[i])
			abort();
	machine_free(&m);
	return 0;
}
