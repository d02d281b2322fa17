/*
 * http: HTTP/1.1 on a Unix stream socket, served from the event loop. Requests are parsed by
 * http-parser (libhttp-parser); this module bounds what a client may send and how long it may
 * take, and hands each complete request to one handler, one at a time per connection.
 */
#ifndef MICROVM_API_HTTP_H
#define MICROVM_API_HTTP_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct loop;

/* Bounds on one request: what a client may make the monitor hold. */
enum {
	HTTP_URL_MAX = 1024,	  /* bytes of request target */
	HTTP_HEADERS_MAX = 32,	  /* header lines */
	HTTP_HEAD_MAX = 8192,	  /* bytes of request line and headers */
	HTTP_BODY_MAX = 64 << 10, /* bytes of body */
	HTTP_CONNS_MAX = 32,	  /* connections served at once; more wait in the backlog */
	HTTP_TIMEOUT_MS = 5000,	  /* to send a whole request once begun, or to take a reply */
	HTTP_IDLE_MS = 10000,	  /* an open connection with no request under way */
};

/* One request being parsed, then complete (or refused with a status). */
struct http_msg {
	http_parser p;
	char url[HTTP_URL_MAX + 1];
	size_t url_len;
	char *body; /* NUL-terminated; NULL when the request had none */
	size_t body_len;
	unsigned headers;
	bool in_value;	 /* the parser is inside a header value (the next field is a new header) */
	bool started;	 /* a byte of this request has arrived */
	bool complete;	 /* a whole request: method, url, body */
	bool keep_alive; /* the client wants the connection kept */
	int error;	 /* the status to refuse it with (400, 413, 414, 431), 0 if none */
};

/* A reply: the status and its JSON body (or NULL for none). */
struct http_reply {
	int status;
	char *body; /* malloc'd; freed by the server */
};

typedef void (*http_handler)(void *opaque, const char *method, const char *url, const char *body,
			     size_t body_len, struct http_reply *reply);

/* Start on a fresh request (a new connection, or the next on a kept one). */
void http_msg_init(struct http_msg *m);
/* Release what the request holds. */
void http_msg_free(struct http_msg *m);
/*
 * Feed bytes; returns how many were taken (parsing stops after a complete request, so the rest
 * belongs to the next one). Sets m->complete or m->error.
 */
size_t http_msg_feed(struct http_msg *m, const char *data, size_t len);
/* The method's name ("GET", "PUT", ...). */
const char *http_msg_method(const struct http_msg *m);
/* Format a reply's status line, headers and body into a new buffer; its length in *len. */
char *http_format_reply(const struct http_reply *r, bool keep_alive, size_t *len);

struct http_conn;

struct http_server {
	int listen_fd, timer_fd;
	char *path;	   /* the socket's file, removed on close */
	uid_t uid;	   /* the socket's owner: the user microvm runs as once set up */
	uid_t peer_uid;	   /* besides root, the only peer served (the owner unless changed) */
	bool hold;	   /* answer no more requests until the next attach (the loop changes) */
	uint64_t retry_at; /* accept failed (no descriptors): listen again then (ns), or 0 */
	struct loop *loop;
	http_handler fn;
	void *opaque;
	struct http_conn *conns;
	unsigned nconns;
	bool listening;	     /* the listener is watched (not while at HTTP_CONNS_MAX) */
	unsigned timeout_ms; /* HTTP_TIMEOUT_MS (http_server_open); tests lower it */
	unsigned long refused, timed_out;
};

/*
 * Create the socket at path (mode 0600, owned by uid:gid, the user microvm runs as once set
 * up); a stale socket is replaced, any other file refused. -errno (said).
 */
int http_server_open(struct http_server *s, const char *path, uid_t uid, gid_t gid, http_handler fn,
		     void *opaque);
/* Serve from loop l (the server moves when the loop changes). -errno. */
int http_server_attach(struct http_server *s, struct loop *l);
/* Stop serving from the current loop (connections stay open). */
void http_server_detach(struct http_server *s);
/* Write out queued replies without waiting (a reply before the loop changes). */
void http_server_flush(struct http_server *s);
/* Close every connection and the socket, and remove its file. */
void http_server_close(struct http_server *s);

#endif
