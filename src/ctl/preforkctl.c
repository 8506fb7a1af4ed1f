/* SPDX-License-Identifier: ISC */
/* preforkctl.c - preforkctl(8): asks a running preforkd over its control socket, and says what it answered.
 *
 * One request, one JSON reply. "reload" waits for the reload to end and
 * exits 1 with its error when it failed, which makes "ExecReload=preforkctl
 * reload" synchronous and truthful under systemd. Exit statuses: 0 done,
 * 1 the daemon refused or failed, 2 usage, 3 no daemon answers, 4 not
 * allowed, 5 a reply that cannot be read (or none in time). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl/jsonread.h"

#define DEFAULT_SOCKET "/run/preforkd/control.sock"
#define REPLY_MAX (4u << 20)

enum { EXIT_DONE, EXIT_FAILED, EXIT_USAGE, EXIT_NO_DAEMON, EXIT_DENIED, EXIT_BAD_REPLY };

static void usage(FILE *f)
{
	fprintf(f, "usage: preforkctl [-s SOCKET] [-t SECONDS] [--json] COMMAND\n"
		"commands:\n"
		"  status       what every service and worker is doing (--json: the reply as is)\n"
		"  reload       reload the config; waits, exits 1 with the error if it failed\n"
		"  upgrade      run the binary now at the daemon's path in its place (same pid):\n"
		"               checked with -t first; waits for the new image's workers\n"
		"  stop         stop gracefully (in-flight connections finish)\n"
		"  stop fast    stop now, closing every connection\n"
		"  scale SERVICE N\n"
		"               run N workers of SERVICE until the next reload; waits for them\n"
		"  recycle SERVICE\n"
		"               replace each worker of SERVICE in turn, every replacement ready\n"
		"               before the old one stops; waits, exits 1 if one failed\n"
		"options:\n"
		"  -s SOCKET    the control socket (default " DEFAULT_SOCKET ")\n"
		"  -t SECONDS   how long to wait for the reply (default 10; reload, upgrade,\n"
		"               scale, recycle: 300)\n"
		"  -j, --json   print the reply as it came\n");
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "preforkctl: %s: path too long for a unix socket\n", path);
		exit(EXIT_USAGE);
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;

		if (err == ENOENT || err == ECONNREFUSED)
			fprintf(stderr, "preforkctl: %s: %s: is preforkd running (and its "
				"control-socket this one)?\n", path, strerror(err));
		else
			fprintf(stderr, "preforkctl: %s: %s\n", path, strerror(err));
		exit(err == EACCES || err == EPERM ? EXIT_DENIED :
		     err == ENOENT || err == ECONNREFUSED ? EXIT_NO_DAEMON : EXIT_FAILED);
	}
	return fd;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends request, reads one reply line within timeout_ms; malloc'd. */
static char *ask(int fd, const char *request, long timeout_ms)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	long long deadline = now_ms() + timeout_ms;

	int send_err = 0;

	if (!buf) {
		fprintf(stderr, "preforkctl: out of memory\n");
		exit(EXIT_FAILED);
	}
	/* A refusal comes at once and the daemon closes: the request may find
	 * the connection closed (EPIPE) with the answer waiting to be read. */
	if (send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request))
		send_err = errno;
	shutdown(fd, SHUT_WR);	/* one request: the daemon closes after its reply */
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)(left > 60000 ? 60000 : left)) < 0) {
			if (left > 0 && errno == EINTR)
				continue;
			if (left > 0)
				continue;
			fprintf(stderr, "preforkctl: no reply within %ld s\n", timeout_ms / 1000);
			exit(EXIT_BAD_REPLY);
		}
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (len + 1 >= cap) {
			char *bigger = cap < REPLY_MAX ? realloc(buf, cap *= 2) : NULL;

			if (!bigger) {
				fprintf(stderr, "preforkctl: the reply is too long\n");
				exit(EXIT_BAD_REPLY);
			}
			buf = bigger;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(buf, '\n', len))
			break;
	}
	buf[len] = '\0';
	if (!memchr(buf, '\n', len) && send_err && !len) {
		fprintf(stderr, "preforkctl: sending the request: %s\n", strerror(send_err));
		exit(EXIT_FAILED);
	}
	if (!memchr(buf, '\n', len)) {
		fprintf(stderr, "preforkctl: the daemon closed the connection %s\n",
			len ? "in the middle of its reply" : "without a reply");
		exit(EXIT_BAD_REPLY);
	}
	return buf;
}

static const char *duration(double ms, char *buf, size_t len)
{
	double s = ms / 1000;

	if (s < 120)
		snprintf(buf, len, "%.0fs", s);
	else if (s < 7200)
		snprintf(buf, len, "%.0fm", s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%.0fh", s / 3600);
	else
		snprintf(buf, len, "%.0fd", s / 86400);
	return buf;
}

/* A service name goes into a line of words: one word, printable. */
static bool service_name_ok(const char *name)
{
	if (!*name)
		return false;
	for (; *name; name++)
		if ((unsigned char)*name <= ' ' || *name == 0x7f)
			return false;
	return true;
}

/* A control character of a name the daemon passed on is not printed raw. */
static void print_clean(const char *s, int width)
{
	char out[256];
	size_t n = 0;

	for (; s && *s && n + 4 < sizeof(out); s++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, (unsigned char)*s < 0x20 ||
				      *s == 0x7f ? "\\x%02x" : "%c", (unsigned char)*s);
	out[n] = '\0';
	printf("%-*s", width, out);
}

static void print_status(const struct jv *r)
{
	const struct jv *services = jv_get(r, "services"), *last = jv_get(r, "last_reload");
	char a[32];

	printf("preforkd %s, pid %.0f, up %s, generation %.0f%s%s\n", jv_str(r, "version"),
	       jv_num(r, "pid", 0), duration(jv_num(r, "uptime_ms", 0), a, sizeof(a)),
	       jv_num(r, "generation", 0),
	       jv_get(r, "reloading") && jv_get(r, "reloading")->b ? ", reloading" : "",
	       jv_get(r, "stopping") && jv_get(r, "stopping")->b ? ", stopping" : "");
	printf("config %s\n", jv_str(r, "config") ? jv_str(r, "config") : "?");
	if (last)
		printf("last reload: %s\n", jv_str(last, "result") ? jv_str(last, "result") : "?");
	for (const struct jv *s = services ? services->child : NULL; s; s = s->next) {
		const struct jv *ls = jv_get(s, "listeners"), *ws = jv_get(s, "workers");

		const struct jv *conns = jv_get(s, "connections"), *helpers = jv_get(s, "helpers");

		printf("\nservice ");
		print_clean(jv_str(s, "name"), 0);
		printf(" (%s", jv_str(s, "handler") ? jv_str(s, "handler") : "?");
		if (jv_get(s, "target"))
			printf(", %.0f worker%s, at most %.0f", jv_num(s, "target", 0),
			       jv_num(s, "target", 0) == 1 ? "" : "s", jv_num(s, "max_workers", 0));
		if (jv_get(s, "elastic") && jv_get(s, "elastic")->b)
			printf(", elastic from %.0f%s", jv_num(s, "min_workers", 0),
			       jv_get(s, "pinned") && jv_get(s, "pinned")->b ? ", pinned by scale" : "");
		printf(")");
		if (conns)
			printf(": %.0f connections accepted, %.0f open", jv_num(conns, "accepted", 0),
			       jv_num(conns, "open", 0));
		if (helpers)
			printf(", %.0f helpers started, %.0f failed", jv_num(helpers, "started", 0),
			       jv_num(helpers, "failed", 0));
		printf("\n");
		printf("  %-44s %4s %7s %7s\n", "LISTENER", "FD", "QUEUE", "LIMIT");
		for (const struct jv *l = ls ? ls->child : NULL; l; l = l->next) {
			printf("  ");
			print_clean(jv_str(l, "address"), 44);
			printf(" %4.0f", jv_num(l, "fd", -1));
			if (jv_get(l, "queue"))
				printf(" %7.0f %7.0f\n", jv_num(l, "queue", 0), jv_num(l, "queue_limit", 0));
			else
				printf(" %7s %7s\n", "-", "-");
		}
		printf("  %-4s %-8s %-4s %-9s %7s %9s %6s %9s  %s\n", "SLOT", "PID", "GEN", "STATE",
		       "UP", "RSS", "OPEN", "ACCEPTED", "STATUS");
		for (const struct jv *w = ws ? ws->child : NULL; w; w = w->next) {
			char up[32] = "-", rss[32] = "-", pid[32] = "-";

			if (jv_get(w, "pid")) {
				snprintf(pid, sizeof(pid), "%.0f", jv_num(w, "pid", 0));
				duration(jv_num(w, "uptime_ms", 0), up, sizeof(up));
				snprintf(rss, sizeof(rss), "%.1fM", jv_num(w, "rss_bytes", 0) / 1048576);
			}
			char open[32] = "-", accepted[32] = "-";

			if (jv_get(w, "accepted")) {
				snprintf(open, sizeof(open), "%.0f", jv_num(w, "connections_open", 0));
				snprintf(accepted, sizeof(accepted), "%.0f", jv_num(w, "accepted", 0));
			}
			printf("  %-4.0f %-8s %-4.0f %-9s %7s %9s %6s %9s  ", jv_num(w, "slot", 0), pid,
			       jv_num(w, "generation", 0),
			       jv_str(w, "state") ? jv_str(w, "state") : "?", up, rss, open, accepted);
			print_clean(jv_str(w, "app_status"), 0);
			printf("\n");
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_SOCKET;
	char request[320], why[128], *text;
	long timeout = -1;
	bool json = false;
	struct jv *r;
	const struct jv *ok;
	int c, fd, status = EXIT_DONE;

	while ((c = getopt_long(argc, argv, "+s:t:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 't': {
			char *end;

			timeout = strtol(optarg, &end, 10);
			if (*end || end == optarg || timeout <= 0 || timeout > 86400) {
				fprintf(stderr, "preforkctl: -t %s: not a number of seconds (1 to 86400)\n",
					optarg);
				return EXIT_USAGE;
			}
			timeout *= 1000;
			break;
		}
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_DONE;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc >= 1 && argc <= 2 && strcmp(argv[0], "status") == 0 &&
	    (argc == 1 || strcmp(argv[1], "--json") == 0)) {
		json |= argc == 2;
		snprintf(request, sizeof(request), "status\n");
	} else if (argc == 1 && (strcmp(argv[0], "reload") == 0 || strcmp(argv[0], "upgrade") == 0)) {
		snprintf(request, sizeof(request), "%s\n", argv[0]);
		if (timeout < 0)
			timeout = 300000;
	} else if (argc == 1 && strcmp(argv[0], "stop") == 0) {
		snprintf(request, sizeof(request), "stop\n");
	} else if (argc == 2 && strcmp(argv[0], "stop") == 0 && strcmp(argv[1], "fast") == 0) {
		snprintf(request, sizeof(request), "stop fast\n");
	} else if ((argc == 2 && strcmp(argv[0], "recycle") == 0) ||
		   (argc == 3 && strcmp(argv[0], "scale") == 0)) {
		if (!service_name_ok(argv[1]) || strlen(argv[1]) > 256) {
			fprintf(stderr, "preforkctl: %s: a service is named by one word of printable "
				"characters (at most 256)\n", argv[0]);
			return EXIT_USAGE;
		}
		if (argc == 3 && (strspn(argv[2], "0123456789") != strlen(argv[2]) ||
				  !argv[2][0] || strlen(argv[2]) > 7)) {
			fprintf(stderr, "preforkctl: scale %s: \"%s\" is not a number of workers\n",
				argv[1], argv[2]);
			return EXIT_USAGE;
		}
		snprintf(request, sizeof(request), "%s %s%s%s\n", argv[0], argv[1],
			 argc == 3 ? " " : "", argc == 3 ? argv[2] : "");
		if (timeout < 0)
			timeout = 300000;
	} else {
		usage(stderr);
		return EXIT_USAGE;
	}
	fd = connect_to(path);
	text = ask(fd, request, timeout < 0 ? 10000 : timeout);
	close(fd);
	r = jv_parse(text, why, sizeof(why));
	ok = jv_get(r, "ok");
	if (!r || r->type != JV_OBJECT || !ok || ok->type != JV_BOOL) {
		fprintf(stderr, "preforkctl: the reply is not what preforkd sends (%s): %.200s",
			r ? "no \"ok\"" : why, text);
		status = EXIT_BAD_REPLY;
	} else if (json) {
		fputs(text, stdout);
	}
	if (status == EXIT_DONE && !ok->b) {
		const char *error = jv_str(r, "error");

		fprintf(stderr, "preforkctl: %s\n", error ? error : "failed");
		status = error && strcmp(error, "permission denied") == 0 ? EXIT_DENIED : EXIT_FAILED;
	} else if (status == EXIT_DONE && !json && strcmp(request, "status\n") == 0) {
		print_status(r);
	} else if (status == EXIT_DONE && !json && jv_str(r, "result")) {
		printf("%s\n", jv_str(r, "result"));
	}
	jv_free(r);
	free(text);
	return status;
}
