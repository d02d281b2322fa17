/* tap: Linux TAP interfaces with virtio-net headers, one file descriptor per queue pair. */
#include "backends/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

/* tap_check_name's answer: the message, kept until the next one (a name may be long). */
static const char *why_not(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *why_not(const char *fmt, ...)
{
	static char *why;
	va_list ap;
	int n;

	free(why);
	va_start(ap, fmt);
	n = vasprintf(&why, fmt, ap);
	va_end(ap);
	if (n < 0) {
		why = NULL;
		return "not a usable TAP interface name";
	}
	return why;
}

const char *tap_check_name(const char *name)
{
	char path[96];
	unsigned long flags;
	FILE *f;
	int n;

	if (!*name || strlen(name) >= IFNAMSIZ || strchr(name, '/') || strchr(name, ' ') ||
	    (strchr(name, '%') && !strstr(name, "%d")) ||
	    (strstr(name, "%d") && strchr(strstr(name, "%d") + 1, '%')))
		return why_not("'%s' is not an interface name (1-%d characters, no '/' or spaces, "
			       "at most one %%d)",
			       name, IFNAMSIZ - 1);
	if (strchr(name, '%'))
		return NULL;
	snprintf(path, sizeof(path), "/sys/class/net/%s", name);
	if (access(path, F_OK) < 0)
		return NULL;
	snprintf(path, sizeof(path), "/sys/class/net/%s/tun_flags", name);
	f = fopen(path, "re");
	if (!f)
		return why_not("'%s' is a network interface but not a TAP device", name);
	n = fscanf(f, "%lx", &flags);
	fclose(f);
	if (n == 1 && !(flags & IFF_TAP))
		return why_not("'%s' is a TUN (layer 3) device, not a TAP device", name);
	return NULL;
}

/* One more queue of the interface t->name (resolved by the first call). -errno, logged. */
static int open_queue(struct tap *t, const char *owner, unsigned nqueues, int hdr_len, bool existed)
{
	struct ifreq ifr = {0};
	int fd, err, le = 1;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT || err == -ENODEV)
			log_error("%s: no /dev/net/tun: the host kernel needs the tun module "
				  "(modprobe tun)",
				  owner);
		else
			log_error("%s: cannot open /dev/net/tun: %s", owner, strerror(-err));
		return err;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", t->name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (nqueues > 1)
		ifr.ifr_flags |= IFF_MULTI_QUEUE;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = -errno;
		if (err == -EPERM && !existed)
			log_error("%s: creating TAP interface '%s' needs CAP_NET_ADMIN; run as "
				  "root, or create it once for your user: ip tuntap add dev %s "
				  "mode tap%s user $USER",
				  owner, t->name, strchr(t->name, '%') ? "tap0" : t->name,
				  nqueues > 1 ? " multi_queue" : "");
		else if (err == -EPERM)
			log_error("%s: TAP interface '%s' belongs to another user or group "
				  "(ip tuntap ... user/group), or CAP_NET_ADMIN is missing",
				  owner, t->name);
		else if (err == -EBUSY)
			log_error("%s: TAP interface '%s' is in use by another process", owner,
				  t->name);
		else if (err == -EINVAL && existed)
			log_error("%s: TAP interface '%s' exists with other flags: queues = %u "
				  "needs it %s multi_queue (ip tuntap del/add dev %s mode tap%s)",
				  owner, t->name, nqueues, nqueues > 1 ? "with" : "without",
				  t->name, nqueues > 1 ? " multi_queue" : "");
		else
			log_error("%s: cannot attach TAP interface '%s': %s", owner, t->name,
				  strerror(-err));
		close(fd);
		return err;
	}
	memcpy(t->name, ifr.ifr_name, IFNAMSIZ);
	t->name[IFNAMSIZ - 1] = 0;
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0) {
		err = -errno;
		log_error("%s: TAP '%s' refuses %d-byte virtio-net headers: %s", owner, t->name,
			  hdr_len, strerror(-err));
		close(fd);
		return err;
	}
	/* virtio 1.x headers are little-endian; on little-endian hosts this is the default. */
	if (ioctl(fd, TUNSETVNETLE, &le) < 0 && errno != EINVAL && errno != ENOTTY) {
		err = -errno;
		log_error("%s: TAP '%s': TUNSETVNETLE: %s", owner, t->name, strerror(-err));
		close(fd);
		return err;
	}
	t->fds[t->nfds++] = fd;
	return 0;
}

/* Give a created interface the NIC's MTU and bring it up; check an existing one's MTU. */
static int set_link(struct tap *t, const char *owner, uint32_t mtu)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int err = 0;

	if (s < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", t->name);
	if (ioctl(s, SIOCGIFMTU, &ifr) == 0 && (uint32_t)ifr.ifr_mtu != mtu) {
		ifr.ifr_mtu = (int)mtu;
		if (ioctl(s, SIOCSIFMTU, &ifr) < 0) {
			if (t->created) {
				err = -errno;
				log_error("%s: cannot set the MTU of '%s' to %u: %s", owner,
					  t->name, mtu, strerror(-err));
			} else {
				log_warn("%s: '%s' has a different MTU than the guest's %u; set it "
					 "with: ip link set dev %s mtu %u",
					 owner, t->name, mtu, t->name, mtu);
			}
		}
	}
	if (!err && t->created && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
			err = -errno;
			log_error("%s: cannot bring '%s' up: %s", owner, t->name, strerror(-err));
		}
	}
	close(s);
	return err;
}

int tap_open(struct tap *t, const char *owner, const char *name, unsigned nqueues, int hdr_len,
	     uint32_t mtu)
{
	bool existed;
	int err;

	memset(t, 0, sizeof(*t));
	if (strlen(name) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->fds = calloc(nqueues, sizeof(*t->fds));
	if (!t->fds)
		return -ENOMEM;
	existed = !strchr(name, '%') && if_nametoindex(name) != 0;
	t->created = !existed;
	for (unsigned i = 0; i < nqueues; i++) {
		err = open_queue(t, owner, nqueues, hdr_len, existed || i > 0);
		if (err) {
			tap_close(t);
			return err;
		}
	}
	err = set_link(t, owner, mtu);
	if (err)
		tap_close(t);
	return err;
}

int tap_set_offload(int fd, unsigned flags)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0 ? -errno : 0;
}

int tap_set_queue_enabled(int fd, bool enabled)
{
	struct ifreq ifr = {0};

	ifr.ifr_flags = enabled ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	return ioctl(fd, TUNSETQUEUE, &ifr) < 0 ? -errno : 0;
}

bool tap_deleted(int fd)
{
	struct ifreq ifr = {0};

	/* A queue of a deleted interface answers EBADFD; a detached queue still answers. */
	return ioctl(fd, TUNGETIFF, &ifr) < 0 && errno == EBADFD;
}

void tap_close(struct tap *t)
{
	for (unsigned i = 0; i < t->nfds; i++)
		close(t->fds[i]);
	free(t->fds);
	t->fds = NULL;
	t->nfds = 0;
}
