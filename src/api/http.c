/* http: HTTP/1.1 over a Unix socket on the event loop; http-parser reads the requests. */
#include "api/http.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "sandbox.h"
#include "timeline.h"

/* ---- one request ---- */

static int on_message_begin(http_parser *p)
{
	struct http_msg *m = p->data;

	m->started = true;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_msg *m = p->data;

	if (len > HTTP_URL_MAX - m->url_len) {
		m->error = 414;
		return -1;
	}
	memcpy(m->url + m->url_len, at, len);
	m->url_len += len;
	m->url[m->url_len] = '\0';
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_msg *m = p->data;

	(void)at;
	(void)len;
	/* A field after a value (or the first one) begins a new header line. */
	if (m->in_value || !m->headers) {
		if (++m->headers > HTTP_HEADERS_MAX) {
			m->error = 431;
			return -1;
		}
	}
	m->in_value = false;
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_msg *m = p->data;

	(void)at;
	(void)len;
	m->in_value = true;
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_msg *m = p->data;

	/* Content-Length is known now: a body too big is refused before it is read. */
	if (p->content_length != ULLONG_MAX && p->content_length > HTTP_BODY_MAX) {
		m->error = 413;
		return -1;
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_msg *m = p->data;
	char *b;

	if (len > HTTP_BODY_MAX - m->body_len) { /* chunked bodies have no length up front */
		m->error = 413;
		return -1;
	}
	b = realloc(m->body, m->body_len + len + 1);
	if (!b) {
		m->error = 503;
		return -1;
	}
	memcpy(b + m->body_len, at, len);
	m->body = b;
	m->body_len += len;
	b[m->body_len] = '\0';
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_msg *m = p->data;

	m->complete = true;
	m->keep_alive = http_should_keep_alive(p);
	http_parser_pause(p, 1); /* what follows is the next request's */
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

void http_msg_init(struct http_msg *m)
{
	memset(m, 0, sizeof(*m));
	http_parser_set_max_header_size(HTTP_HEAD_MAX); /* the library's one setting */
	http_parser_init(&m->p, HTTP_REQUEST);
	m->p.data = m;
}

void http_msg_free(struct http_msg *m)
{
	free(m->body);
	m->body = NULL;
}

size_t http_msg_feed(struct http_msg *m, const char *data, size_t len)
{
	size_t n;

	if (m->complete || m->error)
		return 0;
	n = http_parser_execute(&m->p, &settings, data, len);
	if (m->complete)
		return n;
	if (m->error)
		return n;
	if (HTTP_PARSER_ERRNO(&m->p) != HPE_OK || m->p.upgrade) {
		/* The head's bound is http-parser's (HTTP_HEAD_MAX, set in http_msg_init). */
		m->error = HTTP_PARSER_ERRNO(&m->p) == HPE_HEADER_OVERFLOW ? 431 : 400;
		return n;
	}
	return n;
}

const char *http_msg_method(const struct http_msg *m)
{
	return http_method_str((enum http_method)m->p.method);
}

char *http_format_reply(const struct http_reply *r, bool keep_alive, size_t *len)
{
	const char *body = r->body ? r->body : "";
	size_t blen = strlen(body);
	const char *reason = http_status_str((enum http_status)r->status);
	char *out = NULL;
	int n;

	n = asprintf(&out,
		     "HTTP/1.1 %d %s\r\nServer: microvm\r\n%s"
		     "Content-Length: %zu\r\nConnection: %s\r\n\r\n%s",
		     r->status, reason, blen ? "Content-Type: application/json\r\n" : "", blen,
		     keep_alive ? "keep-alive" : "close", body);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return out;
}

/* ---- the server ---- */

struct http_conn {
	int fd;
	struct http_server *s;
	struct http_msg msg;
	char pending[4096]; /* read, not yet parsed (the next request waits for a reply) */
	size_t npending;
	char *out; /* the reply being written */
	size_t out_len, out_off;
	bool close_after;  /* close once the reply is out */
	uint64_t deadline; /* CLOCK_MONOTONIC ns: a request or a reply late past this ends it */
	struct http_conn *next;
};

static void rearm(struct http_server *s)
{
	struct itimerspec its = {0};
	uint64_t first = UINT64_MAX;

	for (struct http_conn *c = s->conns; c; c = c->next)
		if (c->deadline < first)
			first = c->deadline;
	if (s->retry_at && s->retry_at < first)
		first = s->retry_at;
	if (first != UINT64_MAX) {
		its.it_value.tv_sec = (time_t)(first / 1000000000ull);
		its.it_value.tv_nsec = (long)(first % 1000000000ull);
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(s->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_listen(void *opaque, uint32_t events);

/* A connection with no request under way and no reply to send: the one to let go when full. */
static bool conn_idle(const struct http_conn *c)
{
	return !c->out && !c->msg.started && !c->npending;
}

static struct http_conn *oldest_idle(struct http_server *s)
{
	struct http_conn *found = NULL;

	for (struct http_conn *c = s->conns; c; c = c->next) /* newest first */
		if (conn_idle(c))
			found = c;
	return found;
}

/*
 * Listen while there is room, or an idle connection to make room with; not while accept
 * is backing off (out of descriptors). At HTTP_CONNS_MAX with every connection busy, each
 * of them ends within HTTP_TIMEOUT_MS, and new clients wait in the backlog meanwhile.
 */
static void watch_listener(struct http_server *s)
{
	bool want = !s->retry_at && (s->nconns < HTTP_CONNS_MAX || oldest_idle(s));

	if (s->loop && want != s->listening && !loop_mod(s->loop, s->listen_fd, want ? EPOLLIN : 0))
		s->listening = want;
}

static void conn_close(struct http_conn *c)
{
	struct http_server *s = c->s;

	for (struct http_conn **p = &s->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	if (s->loop)
		loop_del(s->loop, c->fd);
	close(c->fd);
	http_msg_free(&c->msg);
	free(c->out);
	free(c);
	s->nconns--;
	watch_listener(s);
}

/* Write what the socket takes; true when the connection is still open. */
static bool conn_write(struct http_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (c->s->loop)
				loop_mod(c->s->loop, c->fd, EPOLLOUT);
			return true;
		}
		if (n <= 0) {
			conn_close(c);
			return false;
		}
		c->out_off += (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	if (c->close_after) {
		conn_close(c);
		return false;
	}
	if (c->s->loop)
		loop_mod(c->s->loop, c->fd, EPOLLIN);
	c->deadline = timeline_clock_ns() + HTTP_IDLE_MS * 1000000ull;
	watch_listener(c->s); /* idle again: room for a waiting client */
	return true;
}

static void conn_reply(struct http_conn *c, struct http_reply *r, bool keep_alive)
{
	c->out = http_format_reply(r, keep_alive, &c->out_len);
	free(r->body);
	r->body = NULL;
	c->out_off = 0;
	c->close_after = !keep_alive || !c->out;
	c->deadline = timeline_clock_ns() + c->s->timeout_ms * 1000000ull;
}

/* Answer every whole request buffered, one reply at a time. True while the connection is open. */
static bool conn_pump(struct http_conn *c)
{
	while (!c->out && c->npending && !c->s->hold) {
		bool was_started = c->msg.started;
		size_t n = http_msg_feed(&c->msg, c->pending, c->npending);
		struct http_reply r = {0};

		memmove(c->pending, c->pending + n, c->npending - n);
		c->npending -= n;
		/* Once a request has begun, all of it must arrive in time (slowloris). */
		if (!was_started && c->msg.started)
			c->deadline = timeline_clock_ns() + c->s->timeout_ms * 1000000ull;
		if (c->msg.error) {
			r.status = c->msg.error;
			if (asprintf(&r.body, "{\"fault_message\": \"%s\"}",
				     http_status_str((enum http_status)r.status)) < 0)
				r.body = NULL;
			c->npending = 0;
			conn_reply(c, &r, false);
		} else if (c->msg.complete) {
			r.status = 500;
			c->s->fn(c->s->opaque, http_msg_method(&c->msg), c->msg.url, c->msg.body,
				 c->msg.body_len, &r);
			conn_reply(c, &r, c->msg.keep_alive);
			http_msg_free(&c->msg);
			http_msg_init(&c->msg);
		} else {
			break; /* the rest of this request is still on its way */
		}
		if (!conn_write(c))
			return false;
	}
	return true;
}

static void on_conn(void *opaque, uint32_t events)
{
	struct http_conn *c = opaque;
	ssize_t n;

	if (c->out) {
		if (conn_write(c) && !c->out && conn_pump(c))
			rearm(c->s);
		return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	n = read(c->fd, c->pending + c->npending, sizeof(c->pending) - c->npending);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* Closed, mid-request or not: nothing of it was acted on. */
		conn_close(c);
		return;
	}
	c->npending += (size_t)n;
	if (conn_pump(c))
		rearm(c->s);
}

static bool peer_allowed(struct http_server *s, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return cred.uid == 0 || cred.uid == s->peer_uid;
}

static void on_listen(void *opaque, uint32_t events)
{
	struct http_server *s = opaque;
	struct http_conn *c;
	int fd;

	(void)events;
	if (s->nconns >= HTTP_CONNS_MAX) {
		struct http_conn *idle = oldest_idle(s);

		/* Full: an idle connection makes room for the new client (idle ones cannot
		 * keep everybody out); with none, the client waits in the backlog. */
		if (!idle) {
			watch_listener(s);
			return;
		}
		conn_close(idle);
	}
	fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		/* Out of descriptors or memory: the client waits in the backlog while accept
		 * backs off (the listener would be ready again at once, a busy loop). */
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
			s->retry_at = timeline_clock_ns() + 100 * 1000000ull;
			watch_listener(s);
			rearm(s);
		}
		return;
	}
	if (!peer_allowed(s, fd)) {
		s->refused++;
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || loop_add(s->loop, fd, EPOLLIN, on_conn, c)) {
		free(c);
		close(fd);
		return;
	}
	c->fd = fd;
	c->s = s;
	http_msg_init(&c->msg);
	c->deadline = timeline_clock_ns() + HTTP_IDLE_MS * 1000000ull;
	c->next = s->conns;
	s->conns = c;
	s->nconns++;
	watch_listener(s);
	rearm(s);
}

static void on_timer(void *opaque, uint32_t events)
{
	struct http_server *s = opaque;
	uint64_t ticks, now = timeline_clock_ns();
	struct http_conn *c, *next;

	(void)events;
	if (read(s->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	/* A client too slow to send its request or take its reply loses its connection. */
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->deadline <= now) {
			s->timed_out++;
			conn_close(c);
		}
	}
	if (s->retry_at && s->retry_at <= now) {
		s->retry_at = 0;
		watch_listener(s);
	}
	rearm(s);
}

int http_server_open(struct http_server *s, const char *path, uid_t uid, gid_t gid, http_handler fn,
		     void *opaque)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int err;

	*s = (struct http_server){.listen_fd = -1,
				  .timer_fd = -1,
				  .uid = uid,
				  .peer_uid = uid,
				  .timeout_ms = HTTP_TIMEOUT_MS,
				  .fn = fn,
				  .opaque = opaque};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("--api-sock %s: path longer than %zu bytes", path,
			  sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path));
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error("--api-sock %s: exists and is not a socket", path);
			return -EEXIST;
		}
		/* A socket nobody answers on is a stale one: replace it. */
		/* Non-blocking: a live monitor with a full backlog answers EAGAIN, not a wait. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (probe >= 0 &&
		    (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN)) {
			close(probe);
			log_error("--api-sock %s: another process serves this socket", path);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->listen_fd < 0 || s->timer_fd < 0) {
		err = -errno;
		goto fail;
	}
	/* Created with no rights for anyone else, then given to the user microvm runs as. */
	mode_t old = umask(0177);

	err = bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	umask(old);
	if (err)
		goto fail;
	s->path = strdup(path);
	/* (the umask made it 0600; the owner changes on the socket itself, never a symlink) */
	if (!s->path ||
	    (geteuid() == 0 && fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) ||
	    listen(s->listen_fd, 128) < 0) {
		err = s->path ? -errno : -ENOMEM;
		goto fail;
	}
	return 0;
fail:
	log_error("--api-sock %s: %s", path, strerror(-err));
	http_server_close(s);
	return err;
}

int http_server_attach(struct http_server *s, struct loop *l)
{
	int err;

	s->loop = l;
	s->listening = true;
	err = loop_add(l, s->listen_fd, EPOLLIN, on_listen, s);
	err = err ?: loop_add(l, s->timer_fd, EPOLLIN, on_timer, s);
	for (struct http_conn *c = s->conns; !err && c; c = c->next)
		err = loop_add(l, c->fd, c->out ? EPOLLOUT : EPOLLIN, on_conn, c);
	if (err) {
		http_server_detach(s);
		return err;
	}
	s->hold = false;
	watch_listener(s);
	/* Requests that arrived behind one that changed the loop (InstanceStart) are answered
	 * now, from the new loop. */
	for (struct http_conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (!c->out && c->npending)
			conn_pump(c);
	}
	rearm(s);
	return 0;
}

void http_server_detach(struct http_server *s)
{
	if (!s->loop)
		return;
	loop_del(s->loop, s->listen_fd);
	loop_del(s->loop, s->timer_fd);
	for (struct http_conn *c = s->conns; c; c = c->next)
		loop_del(s->loop, c->fd);
	s->loop = NULL;
}

void http_server_flush(struct http_server *s)
{
	struct http_conn *c, *next;

	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->out)
			conn_write(c);
	}
}

void http_server_close(struct http_server *s)
{
	http_server_detach(s);
	while (s->conns)
		conn_close(s->conns);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->timer_fd >= 0)
		close(s->timer_fd);
	/* A confined monitor may not remove files: the next start replaces the stale socket. */
	if (s->path && !sandbox_confined())
		unlink(s->path);
	free(s->path);
	s->path = NULL;
	s->listen_fd = s->timer_fd = -1;
}
