/* SPDX-License-Identifier: ISC */
/* testlib.h - shared test fixture: run the real preforkd, talk to it over real sockets. */
#ifndef PREFORKD_TESTLIB_H
#define PREFORKD_TESTLIB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct daemon {
	pid_t pid;
	char dir[128];		/* private temp dir: config, log, sockets */
	char conf[192];
	char log[192];
	int notify_fd;		/* our end of the daemon's NOTIFY_SOCKET */
	char *notified;		/* every notification so far, each followed by "\n--\n" */
	size_t notified_len;
	int exit_status;	/* once reaped: waitpid status, else -1 */
	/* What it pushed with FDSTORE=1, as a service manager's store would
	 * hold it (daemon_take_stored hands them over; daemon_stop closes the rest). */
	int stored_fds[16];
	char stored_names[16][256];
	size_t nstored;
};

struct daemon_opts {
	long nofile;		/* RLIMIT_NOFILE for the daemon; 0 leaves it */
	long nofile_soft;	/* with nofile: a lower soft limit; 0: the same */
	/* Extra NAME=VALUE environment entries, NULL-terminated. */
	const char *const *env;
	/* A program (and its arguments, NULL-terminated) that runs "preforkd -c
	 * CONF" itself, such as systemd-socket-activate; "@DIR@" is replaced. */
	const char *const *wrapper;
	/* The daemon's stderr (a pipe, say) instead of the log file; 0: the log file. */
	int stderr_fd;
	/* Descriptors passed as systemd passes them (from 3, LISTEN_FDS,
	 * LISTEN_PID, LISTEN_FDNAMES), as its fd store hands them back. */
	const int *pass_fds;
	const char *const *pass_names;
	size_t npass;
	/* The daemon to run instead of the one built (a copy an upgrade replaces). */
	const char *binary;
};

struct Suite;
/* Runs every test of s; returns the process exit status. */
int tl_run_suite(struct Suite *s);

/* A fresh directory under /tmp, removed by tl_rmtree. */
void tl_mkdtemp(char *buf, size_t len);
void tl_rmtree(const char *dir);
/* A TCP port nobody listens on right now (127.0.0.1 and ::1). */
uint16_t tl_free_port(void);
void tl_write_file(const char *path, const char *text);
/* Malloc'd contents of path ("" if missing). */
char *tl_read_file(const char *path);
uint64_t tl_now_ms(void);

/* d->dir/name, in a static buffer (the next call replaces it). */
const char *daemon_path(const struct daemon *d, const char *name);
/* Writes conf_text (where "@DIR@" becomes d->dir) and starts preforkd -c on it. */
void daemon_start(struct daemon *d, const char *conf_text, const struct daemon_opts *opts);
/* One echo service on 127.0.0.1:port and @DIR@/echo.sock, after the
 * global lines; the text is in a static buffer. */
const char *tl_echo_conf(uint16_t port, unsigned workers, const char *global);
/* daemon_start, then asserts READY=1 within 10 s (showing the log if not). */
void daemon_start_ready(struct daemon *d, const char *conf_text, const struct daemon_opts *opts);
/* The exit code of a daemon_wait_exit() status; asserts it exited in time, by itself. */
int tl_exit_code(int status);
/* Replaces the config file (for a reload), "@DIR@" substituted as above. */
void daemon_write_conf(struct daemon *d, const char *conf_text);
/* True once the master reports READY=1 (or logs "ready:" without libsystemd). */
bool daemon_wait_ready(struct daemon *d, int timeout_ms);
/* True once a notification containing needle has arrived. */
bool daemon_wait_notify(struct daemon *d, const char *needle, int timeout_ms);
/* How many notifications so far contain needle. */
unsigned daemon_count_notify(struct daemon *d, const char *needle);
/* SIGHUP, then waits for the READY=1 that ends the reload: 1 when its
 * STATUS= says the reload worked, 0 when it failed, -1 on timeout. */
int daemon_reload(struct daemon *d, int timeout_ms);
/* Reaps the master; returns its wait status, or -1 after timeout_ms. */
int daemon_wait_exit(struct daemon *d, int timeout_ms);
bool daemon_log_contains(struct daemon *d, const char *needle);
/* How many times needle occurs in the log. */
unsigned daemon_log_count(struct daemon *d, const char *needle);
/* text has line as one whole line. */
bool tl_has_line(const char *text, const char *line);
/* How many times needle occurs in text. */
unsigned tl_count_in(const char *text, const char *needle);
bool daemon_wait_log(struct daemon *d, const char *needle, int timeout_ms);
/* The descriptors the daemon pushed to its fd store so far (FDSTORE=1),
 * with their FDNAME=; the caller owns them now. How many. */
size_t daemon_take_stored(struct daemon *d, int *fds, char (*names)[256], size_t max);
/* SIGTERM, wait, and (unless keep_dir) remove the temp dir. Kills on timeout. */
void daemon_stop(struct daemon *d);
/* Worker pids: children of the master. Returns how many were stored. */
size_t daemon_workers(const struct daemon *d, pid_t *pids, size_t max);
/* The children of pid (from /proc); how many were stored. */
size_t tl_children(pid_t pid, pid_t *pids, size_t max);
/* True once pid has exited (a zombie counts as gone; one of ours is reaped). */
bool tl_wait_gone(pid_t pid, int timeout_ms);
/* True when a UDP socket without SO_REUSEADDR can bind ip:port now. */
bool tl_udp_bindable(const char *ip, uint16_t port);
/* Waits until the master has n children other than the ones in old[]. */
bool daemon_wait_workers(const struct daemon *d, size_t n, int timeout_ms);

/* Runs argv[0] (searched in PATH), output (stdout+stderr) in *out; returns
 * its exit status, 128+signal if killed, 127 if it could not be run. */
int tl_run(char **out, char *const argv[]);
/* The same within timeout_ms (-1: no limit); past it the child is killed and -1 returned. */
int tl_run_timeout(char **out, int timeout_ms, char *const argv[]);
/* Runs preforkd with args (NULL-terminated), output (stdout+stderr) in *out;
 * -1 when it has not exited after TL_RUN_PREFORKD_MS (it is killed then). */
#define TL_RUN_PREFORKD_MS 20000
int tl_run_preforkd(char **out, const char *arg, ...);

/* A listening socket on 127.0.0.1:port (asserts it can be had), optionally
 * with SO_REUSEPORT as a foreign server sharing-minded would set it. */
int tl_listen_loopback(uint16_t port, bool reuseport);

/* An echo service "a" on listen (quoted addresses, comma-separated) with
 * extra option lines; the text is in a static buffer. */
const char *tl_service_conf(const char *listen, unsigned workers, const char *extra);
/* ip ("1.2.3.4" or "::1") and port as a socket address; returns its length. */
socklen_t tl_ip_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss);

/* Blocking client sockets; -1 on failure with errno. */
int tl_connect_tcp(const char *ip, uint16_t port);
/* The same from the local address src (127.0.0.2, ...), or any when NULL. */
int tl_connect_tcp_from(const char *src, const char *ip, uint16_t port);
int tl_connect_unix(const char *path);	/* "@name": abstract */
/* The same from a socket bound to src (a path or "@name"; any byte but NUL). */
int tl_connect_unix_from(const char *src, const char *path);
/* A new connection to 127.0.0.1:port or a unix path that echoes msg. */
bool tl_echo_tcp(uint16_t port, const char *msg);
bool tl_echo_unix(const char *path, const char *msg);
/* Sends len bytes and reads them back, interleaved (so large payloads cannot
 * deadlock on full buffers). True when every byte came back unchanged. */
bool tl_echo(int fd, const void *buf, size_t len, int timeout_ms);
/* Sends request on fd and reads one line back within timeout_ms; closes
 * fd (which may be -1). The line, malloc'd, or NULL. */
char *tl_request_line(int fd, const char *request, int timeout_ms);
/* Malloc'd: everything the peer sends until EOF or an error, within
 * timeout_ms; NULL on timeout. *reset (if given) tells a reset from EOF. */
char *tl_read_to_eof(int fd, int timeout_ms, bool *reset);
/* Text read from a pipe or socket bit by bit, as it comes. */
struct tl_reader {
	int fd;			/* made non-blocking */
	char *text;		/* what came so far, NUL-terminated */
	size_t len, cap;
};
void tl_reader_init(struct tl_reader *r, int fd);
/* Reads what fd holds now; false once it is at EOF (or fails). */
bool tl_reader_take(struct tl_reader *r);
void tl_reader_free(struct tl_reader *r);
/* A client thread: connect, 16 bytes there and back (http: a GET / that
 * must be answered 200), close, again, until *stop, TL_LOAD_MAX
 * connections or TL_LOAD_MAX_MS; counts what failed. */
#define TL_LOAD_MAX 20000
#define TL_LOAD_MAX_MS 40000
struct tl_load {
	pthread_t thread;
	uint16_t port;
	const char *unix_path;	/* NULL: TCP to 127.0.0.1:port; copied at the start */
	bool http;
	atomic_bool *stop;
	unsigned ok, connect_failed, echo_failed;
	int last_errno;
};
void tl_load_start(struct tl_load *l);
/* An HTTP/1.0 GET / on fd, answered 200 within timeout_ms (fd is closed). */
bool tl_http_get_ok(int fd, int timeout_ms);
void tl_load_join(struct tl_load *l);
/* Stops and joins n of them; asserts that none failed a connection or an
 * exchange; returns how many succeeded in all. */
unsigned tl_loads_finish(struct tl_load *loads, size_t n);

/* user+system CPU time of pid in milliseconds. */
long tl_cpu_ms(pid_t pid);
/* The inode of the TCP socket listening on port (from /proc/net/tcp and
 * tcp6), 0 if none: the same inode means the very same socket. */
unsigned long tl_listen_inode(uint16_t port);
/* Flags from /proc/pid/fdinfo/fd ("flags:" field), -1 if unreadable. */
long tl_fd_flags(pid_t pid, int fd);
/* Raises our RLIMIT_NOFILE soft limit to the hard limit. */
void tl_raise_nofile(void);
bool tl_ipv6_loopback(void);

#endif
