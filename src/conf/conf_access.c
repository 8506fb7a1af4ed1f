/* SPDX-License-Identifier: ISC */
/* conf_access.c - checks, as each service's own user, that it can run its exec program and enter its directory.
 *
 * The parse checks the files as whoever reads the config (root, usually);
 * a helper runs as the service's user. A 0700 root-owned program would pass
 * -t and a reload and then fail every connection. So once the whole file is
 * read (user and group may come after the service), one child per distinct
 * identity takes it on with the workers' own privdrop_apply() and asks
 * access(X_OK) for every path of the services that run as it. Without root
 * or without an identity there is nobody to become: we ask for ourselves. */
#include "config.h"

#include "conf/conf.h"
#include "conf/conf_private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/privdrop.h"

#define CHECK_TIMEOUT_MS 5000	/* access() on a hung network file system must not hang a reload */

enum access_what { ACCESS_EXEC, ACCESS_DIRECTORY, ACCESS_PRIVDROP };

/* The first failure of a set of services; what a checking child writes back. */
struct access_failure {
	uint32_t service;
	uint32_t what;		/* enum access_what */
	int32_t err;		/* errno */
};

static const struct config *sort_conf;	/* qsort() has no user pointer */

static int identity_cmp(const struct identity *a, const struct identity *b)
{
	if (a->uid != b->uid)
		return a->uid < b->uid ? -1 : 1;
	if (a->gid != b->gid)
		return a->gid < b->gid ? -1 : 1;
	/* initgroups() takes the name: two names of one uid may differ in groups. */
	return strcmp(a->user ? a->user : "", b->user ? b->user : "");
}

static int by_identity(const void *pa, const void *pb)
{
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	int c = identity_cmp(&sort_conf->services[a].run_as, &sort_conf->services[b].run_as);

	return c ? c : (a < b ? -1 : a > b);
}

static int first_failure(const struct config *conf, const size_t *svcs, size_t n, int flags,
			 struct access_failure *f)
{
	for (size_t i = 0; i < n; i++) {
		const struct service *svc = &conf->services[svcs[i]];

		if (faccessat(AT_FDCWD, svc->exec_argv[0], X_OK, flags) < 0)
			*f = (struct access_failure){ (uint32_t)svcs[i], ACCESS_EXEC, errno };
		else if (faccessat(AT_FDCWD, svc->directory, X_OK, flags) < 0)
			*f = (struct access_failure){ (uint32_t)svcs[i], ACCESS_DIRECTORY, errno };
		else
			continue;
		return -1;
	}
	return 0;
}

static void __attribute__((noreturn)) child_check(const struct config *conf, const size_t *svcs,
						  size_t n, int fd)
{
	struct access_failure f = { (uint32_t)svcs[0], ACCESS_PRIVDROP, 0 };

	errno = 0;
	if (privdrop_apply(&conf->services[svcs[0]].run_as) < 0) {
		f.err = errno;
		(void)!write(fd, &f, sizeof(f));
		_exit(1);
	}
	if (first_failure(conf, svcs, n, 0, &f) < 0)
		(void)!write(fd, &f, sizeof(f));
	_exit(0);
}

/* 1: a failure in *f; 0: none; -1: the check itself failed (message in err). */
static int check_as_child(const struct config *conf, const size_t *svcs, size_t n,
			  struct access_failure *f, char *err, size_t errlen)
{
	const struct identity *id = &conf->services[svcs[0]].run_as;
	int fds[2], status, rc = -1;
	struct pollfd pfd;
	ssize_t got = 0;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "%s: pipe2 (to check exec as %s): %s", conf->path,
			 id->user ? id->user : id->group, strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid == 0)
		child_check(conf, svcs, n, fds[1]);
	close(fds[1]);
	if (pid < 0) {
		snprintf(err, errlen, "%s: fork (to check exec as %s): %s", conf->path,
			 id->user ? id->user : id->group, strerror(errno));
		close(fds[0]);
		return -1;
	}
	pfd = (struct pollfd){ .fd = fds[0], .events = POLLIN };
	while ((rc = poll(&pfd, 1, CHECK_TIMEOUT_MS)) < 0 && errno == EINTR)
		;
	if (rc > 0)
		while ((got = read(fds[0], f, sizeof(*f))) < 0 && errno == EINTR)
			;
	if (rc == 0) {
		kill(pid, SIGKILL);
		snprintf(err, errlen, "%s: checking exec and directory as %s took more than %d ms",
			 conf->path, id->user ? id->user : id->group, CHECK_TIMEOUT_MS);
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc <= 0)
		return -1;
	return got == (ssize_t)sizeof(*f) ? 1 : 0;
}

static void describe_identity(const struct identity *id, bool as_them, char *buf, size_t len)
{
	struct passwd *pw;

	if (as_them && id->user && id->group)
		snprintf(buf, len, "user %s (group %s)", id->user, id->group);
	else if (as_them && id->user)
		snprintf(buf, len, "user %s", id->user);
	else if (as_them)
		snprintf(buf, len, "group %s", id->group);
	else if ((pw = getpwuid(geteuid())))
		snprintf(buf, len, "user %s", pw->pw_name);
	else
		snprintf(buf, len, "uid %u", (unsigned)geteuid());
}

static void report(const struct config *conf, const struct conf_lines *lines,
		   const struct access_failure *f, bool as_them, char *err, size_t errlen)
{
	const struct service *svc = &conf->services[f->service];
	const struct conf_lines *at = &lines[f->service];
	char who[160];

	describe_identity(&svc->run_as, as_them, who, sizeof(who));
	if (f->what == ACCESS_EXEC)
		snprintf(err, errlen, "%s:%d: option 'exec': \"%s\" is not executable by %s: %s",
			 conf->path, at->exec, svc->exec_argv[0], who, strerror(f->err));
	else if (f->what == ACCESS_DIRECTORY)
		snprintf(err, errlen, "%s:%d: option 'directory': \"%s\" cannot be searched by %s: %s",
			 conf->path, at->directory ? at->directory : at->exec, svc->directory, who,
			 strerror(f->err));
	else
		snprintf(err, errlen, "%s:%d: service '%s': cannot become %s to check 'exec': %s",
			 conf->path, at->exec, svc->name, who, strerror(f->err));
}

/* The services that run as one identity, checked as it: 0, or -1 with err. */
static int check_identity(const struct config *conf, const struct conf_lines *lines,
			  const size_t *svcs, size_t n, char *err, size_t errlen)
{
	const struct identity *id = &conf->services[svcs[0]].run_as;
	bool as_them = geteuid() == 0 && (id->user || id->group);
	struct access_failure f;
	int rc;

	if (as_them)
		rc = check_as_child(conf, svcs, n, &f, err, errlen);
	else
		rc = first_failure(conf, svcs, n, AT_EACCESS, &f) < 0 ? 1 : 0;
	if (rc == 1)
		report(conf, lines, &f, as_them, err, errlen);
	return rc == 0 ? 0 : -1;
}

int conf_check_exec_access(const struct config *conf, const struct conf_lines *lines,
			   char *err, size_t errlen)
{
	size_t *svcs = calloc(conf->nservices + 1, sizeof(*svcs)), n = 0;
	int rc = 0;

	if (!svcs) {
		snprintf(err, errlen, "%s: out of memory", conf->path);
		return -1;
	}
	for (size_t i = 0; i < conf->nservices; i++)
		if (conf->services[i].exec_argv)
			svcs[n++] = i;
	sort_conf = conf;
	qsort(svcs, n, sizeof(*svcs), by_identity);
	for (size_t start = 0, end; start < n && rc == 0; start = end) {
		for (end = start + 1; end < n && identity_cmp(&conf->services[svcs[start]].run_as,
							      &conf->services[svcs[end]].run_as) == 0; end++)
			;
		rc = check_identity(conf, lines, svcs + start, end - start, err, errlen);
	}
	free(svcs);
	return rc;
}
