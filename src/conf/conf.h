/* SPDX-License-Identifier: ISC */
/* conf.h - the configuration snapshot: what a config file says, checked, in plain structs. */
#ifndef PREFORKD_CONF_H
#define PREFORKD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "worker/access.h"
#include "common/address.h"
#include "common/privdrop.h"

struct handler;

#define CONF_ERR_MAX 512

struct service {
	char *name;
	struct identity run_as;	/* its own user/group, or the global ones */
	const struct handler *handler;
	unsigned workers;		/* at the start (an elastic pool: min-workers) */
	unsigned max_workers;		/* the most "scale", or the elastic pool, may have */
	bool elastic;			/* min-workers, or max-workers without workers */
	unsigned min_workers;		/* elastic: the fewest */
	unsigned scale_up_after_ms, scale_down_after_ms;
	unsigned max_requests;		/* connections or datagrams a worker serves; 0: no limit */
	unsigned max_lifetime_ms;	/* 0: no limit */
	unsigned max_memory_kib;	/* 0: no limit */
	unsigned hang_timeout_ms;	/* 0: off */
	int backlog;
	unsigned max_connections;	/* per worker */
	unsigned idle_timeout_ms;	/* 0: never */
	int socket_mode;		/* for unix listeners */
	uid_t socket_uid;		/* (uid_t)-1: leave as created */
	gid_t socket_gid;		/* (gid_t)-1: leave as created */
	struct address *listen;
	size_t nlisten;
	/* handler "proxy" */
	struct address *upstream;	/* where connections are forwarded, in the config's order */
	size_t nupstream;
	int balance;			/* enum proxy_balance */
	unsigned connect_timeout_ms;	/* for each upstream tried */
	int send_proxy_protocol;	/* 0: none, 1 or 2: that version's header first */
	/* Behind a load balancer: a PROXY header first, from these sources only. */
	bool accept_proxy_protocol;
	struct cidr *proxy_protocol_from;
	size_t nproxy_protocol_from;
	/* handler "exec": the program, NULL-terminated, and what it runs with. */
	char **exec_argv;
	char **exec_env;		/* NAME=value from "env", NULL-terminated */
	char *directory;		/* working directory of the helpers */
	unsigned exec_timeout_ms;	/* 0: none */
	unsigned exec_kill_grace_ms;	/* from SIGTERM to SIGKILL */
	bool exec_stderr_null;		/* else the daemon's stderr */
	/* handler "app": the program is each worker. */
	bool app_ready_notify;		/* ready at READY=1; else once it runs */
	unsigned start_timeout_ms;	/* to be ready */
	int stop_signal;		/* what tells it to finish and exit */
	unsigned stop_timeout_ms;	/* from stop_signal to SIGKILL */
	unsigned watchdog_ms;		/* WATCHDOG_USEC; 0: none */
	/* Who may connect, and how many at once. */
	struct cidr *allow, *deny;
	size_t nallow, ndeny;
	uid_t *allow_users;
	size_t nallow_users;
	gid_t *allow_groups;
	size_t nallow_groups;
	unsigned max_per_source;	/* 0: no limit */
	unsigned max_service_connections;	/* 0: no limit */
	char *busy_message;		/* sent to a client a limit turns away; NULL: none */
};

enum proxy_balance { BALANCE_ROUND_ROBIN, BALANCE_LEAST_CONNECTIONS, BALANCE_FIRST };
#define PROXY_UPSTREAMS_MAX 64

struct config {
	char *path;
	char *text;		/* as read, before comments were blanked */
	struct identity run_as;	/* the global user/group */
	char *pidfile;		/* NULL: no pidfile */
	char *control_socket;	/* "": none */
	int control_mode;
	gid_t control_gid;	/* (gid_t)-1: none */
	struct address *metrics_listen;	/* where GET /metrics is served; none by default */
	size_t nmetrics_listen;
	int log_level;
	unsigned shutdown_timeout_ms;
	struct service *services;
	size_t nservices;
};

/* Reads and checks path. On error returns NULL with "FILE:LINE: what" in err;
 * nothing outside the process is touched either way. */
struct config *conf_load(const char *path, char *err, size_t errlen);
/* The same from text already read (an upgrade's handover: the config the
 * running workers were started from). */
struct config *conf_load_text(const char *path, const char *text, char *err, size_t errlen);
void conf_free(struct config *conf);
const struct service *conf_find_service(const struct config *conf, const char *name);

/* Exposed for tests: comment stripping, strict numbers. */
char *conf_strip_comments(const char *text);
int conf_parse_decimal(const char *s, long min, long max, long *out);
int conf_parse_duration_ms(const char *s, long min_ms, long max_ms, long *out);
/* "512M": bytes, or a number with K, M, G or T (powers of 1024), in KiB
 * rounded up; 0, -1 when it is not a size, -2 when out of range. */
int conf_parse_size_kib(const char *s, long min_kib, long max_kib, long *out);

#endif
