/* SPDX-License-Identifier: ISC */
/* upgrade.c - a new binary in place: checked as a child first, then exec'd by the master itself, same pid.
 *
 * gunicorn and nginx upgrade by forking a second master, which changes the
 * pid under a service manager that tracks the first; HAProxy and einhorn
 * re-exec in place. We re-exec: the binary now at the path we were started
 * from is run with "-t -c CONFIG" first (as a child, waited for from the
 * loop, never blocking it); only if that passes does the master write the
 * handover manifest (handover.c), let the descriptors it names lose
 * close-on-exec, and execve. The new image adopts listeners and workers
 * and replaces the workers with a readiness-gated reload of its own. An
 * execve that fails leaves everything as it was. */
#include "config.h"

#include "master/upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/escape.h"
#include "common/fdutil.h"
#include "common/log.h"
#include "common/spawn.h"
#include "common/version.h"
#include "master/appworker.h"
#include "master/control.h"
#include "master/generation.h"
#include "master/handover.h"
#include "master/master.h"
#include "master/master_private.h"
#include "master/notify.h"

#define UPGRADE_CHECK_TIMEOUT_MS 10000	/* for the new binary's "-t" */
#define UPGRADE_CHECK_OUTPUT_MAX 2048	/* of its output, kept for the reason */
#define UPGRADE_ENV_EXTRA 6

extern char **environ;

static struct {
	pid_t check_pid;	/* the new binary's "-t", running; 0 */
	int out_fd;		/* its stdout and stderr, our end */
	uint64_t deadline;
	bool killed;		/* it overran: SIGKILL sent */
	char path[4096];	/* the binary we were started from, as it was then */
} up = { .out_fd = -1 };

void upgrade_init(void)
{
	ssize_t n = readlink("/proc/self/exe", up.path, sizeof(up.path) - 1);

	up.path[n > 0 ? n : 0] = '\0';
	if (n <= 0 || up.path[0] != '/')
		log_errno(LOG_WARNING, errno, "readlink /proc/self/exe: no binary upgrade");
}

bool upgrade_checking(void)
{
	return up.check_pid > 0;
}

/* Why an upgrade cannot begin now; NULL when it can. It hands over a
 * settled master: no reload, scale or recycle half done. */
static const char *refusal(const struct master *m)
{
	const struct generation *g = m->current;

	if (!up.path[0] || up.path[0] != '/')
		return "the path of the running binary is not known";
	if (m->stopping)
		return "stopping";
	if (!m->ready_announced)
		return "still starting: upgrade once every worker is ready";
	if (m->pending || m->reload_queued)
		return "a reload is in progress: upgrade when it has ended";
	for (size_t i = 0; i < g->conf->nservices; i++)
		if (g->pools[i].scale_op || g->pools[i].recycle_op)
			return "a scale or recycle is in progress: upgrade when it has ended";
	if (generation_count(g, SLOT_STARTING) || generation_count(g, SLOT_RETIRING))
		return "workers are starting (a respawn or a replacement): upgrade once they are ready";
	if (appworker_condemned_alive())
		return "a hung app worker is still being killed: upgrade once it is gone";
	return NULL;
}

static void fail(struct master *m, const char *why)
{
	char status[CONF_ERR_MAX + 160];

	log_error("upgrade failed: %s; the running binary serves on", why);
	master_status_text(m, status, sizeof(status));
	notify_ready(status);	/* ends RELOADING=1, or says nothing new */
	control_upgrade_finished(m, false, why);
}

void upgrade_request(struct master *m, const char *who)
{
	char *argv[] = { up.path, (char *)"-t", (char *)"-L", (char *)"-c", (char *)m->opts->conf_path,
			 NULL };
	struct spawn_failure failed = { 0 };
	struct spawn_fd fds[3];
	int out[2], in;
	char why[4200];
	const char *no;
	pid_t pid;

	if (up.check_pid) {
		log_notice("upgrade asked by %s: one is being checked already; it answers both", who);
		return;
	}
	no = refusal(m);
	if (no) {
		log_notice("upgrade asked by %s: refused: %s", who, no);
		control_upgrade_finished(m, false, no);
		return;
	}
	log_notice("upgrade asked by %s: checking %s -t -L -c %s", who, up.path, m->opts->conf_path);
	in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (in < 0 || pipe2(out, O_CLOEXEC) < 0) {
		snprintf(why, sizeof(why), "pipe for the check of %s: %s", up.path, strerror(errno));
		if (in >= 0)
			close(in);
		fail(m, why);
		return;
	}
	fds[0] = (struct spawn_fd){ in, STDIN_FILENO };
	fds[1] = (struct spawn_fd){ out[1], STDOUT_FILENO };
	fds[2] = (struct spawn_fd){ out[1], STDERR_FILENO };
	pid = spawn_start(&(struct spawn_plan){ .argv = argv, .envp = environ, .fds = fds,
						.nfds = 3 }, &failed);
	close(in);
	close(out[1]);
	if (pid < 0 || failed.step) {
		snprintf(why, sizeof(why), "cannot run %s: %s: %s", up.path,
			 failed.step ? failed.step : "vfork", strerror(failed.step ? failed.err : errno));
		close(out[0]);
		if (pid > 0)
			up.check_pid = -pid;	/* reaped quietly */
		fail(m, why);
		return;
	}
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	up.out_fd = out[0];
	up.check_pid = pid;
	up.killed = false;
	up.deadline = m->now + UPGRADE_CHECK_TIMEOUT_MS;
	notify_status("upgrading: checking the new binary");
}

/* What the check printed: its last line (for a reason) into buf, and
 * whether it said our handover layout (in *theirs, what it said). */
static bool read_check_output(char *buf, size_t len, char *theirs, size_t tlen)
{
	char text[UPGRADE_CHECK_OUTPUT_MAX + 1], *end, *start, *at;
	ssize_t n = up.out_fd >= 0 ? read(up.out_fd, text, UPGRADE_CHECK_OUTPUT_MAX) : -1;

	fd_close(&up.out_fd);
	snprintf(theirs, tlen, "none");
	if (n <= 0) {
		snprintf(buf, len, "it printed nothing");
		return false;
	}
	text[n] = '\0';
	at = strstr(text, "handover-layout ");
	if (at)
		snprintf(theirs, tlen, "%.*s", (int)strcspn(at + 16, "\n"), at + 16);
	end = text + n;
	while (end > text && (end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	start = strrchr(text, '\n');
	start = start ? start + 1 : text;
	escape_string(start, buf, len);
	return strcmp(theirs, handover_layout()) == 0;
}

/* Everything named in the manifest loses close-on-exec just before execve,
 * and gets it back if execve fails: nothing else is ever inherited. */
static void set_inherit(const int *fds, size_t n, bool inherit)
{
	for (size_t i = 0; i < n; i++) {
		int flags = fcntl(fds[i], F_GETFD);

		if (flags >= 0)
			fcntl(fds[i], F_SETFD, inherit ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC);
	}
}

static void exec_new_image(struct master *m)
{
	char extra[UPGRADE_ENV_EXTRA][NOTIFY_ENV_MAX], why[4200];
	char *argv[] = { up.path, (char *)"-c", (char *)m->opts->conf_path,
			 m->opts->verbose ? (char *)"-v" : NULL, NULL };
	struct handover_fds inherit = { 0 };
	size_t nenv = 0, nextra;
	char **envp;
	int manifest, err;

	notify_reloading("upgrading: starting the new binary");
	manifest = handover_write(m, &inherit);
	if (manifest < 0) {
		fail(m, "the handover could not be written (see above)");
		return;
	}
	nextra = notify_exec_env(extra, UPGRADE_ENV_EXTRA - 1);
	snprintf(extra[nextra++], NOTIFY_ENV_MAX, "%s=%d", HANDOVER_ENV, manifest);
	while (environ[nenv])
		nenv++;
	envp = calloc(nenv + nextra + 1, sizeof(*envp));
	if (!envp) {
		close(manifest);
		handover_fds_free(&inherit);
		fail(m, "out of memory");
		return;
	}
	memcpy(envp, environ, nenv * sizeof(*envp));
	for (size_t i = 0; i < nextra; i++)
		envp[nenv + i] = extra[i];
	log_notice("upgrading: executing %s (preforkd %s, pid %ld stays; %zu descriptors handed "
		   "on)", up.path, preforkd_version, (long)m->pid, inherit.n + 1);
	if (notify_watchdog_interval_ms())
		notify_watchdog();	/* the new image pings again as it starts */
	log_drain(LOG_EXIT_DRAIN_MS);
	set_inherit(inherit.fds, inherit.n, true);
	set_inherit(&manifest, 1, true);
	execve(up.path, argv, envp);
	err = errno;
	set_inherit(inherit.fds, inherit.n, false);
	close(manifest);
	handover_fds_free(&inherit);
	free(envp);
	snprintf(why, sizeof(why), "execve %s: %s", up.path, strerror(err));
	fail(m, why);
}

bool upgrade_reaped(struct master *m, pid_t pid, int status)
{
	char out[512], theirs[128], why[sizeof(up.path) * 2 + 800];
	bool same_layout;

	if (up.check_pid < 0 && pid == -up.check_pid) {
		up.check_pid = 0;
		return true;
	}
	if (up.check_pid <= 0 || pid != up.check_pid)
		return false;
	up.check_pid = 0;
	same_layout = read_check_output(out, sizeof(out), theirs, sizeof(theirs));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !same_layout) {
		/* Its workers would read our workers' rows wrong: refused here,
		 * before anything is handed over, rather than by the new image. */
		snprintf(why, sizeof(why), "%s lays out the workers' shared memory as %s, this binary "
			 "as %s: the running workers cannot be handed over; restart instead", up.path,
			 theirs, handover_layout());
		fail(m, why);
		return true;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		const char *no = refusal(m);	/* a stop or a reload may have begun meanwhile */

		if (no)
			fail(m, no);
		else
			exec_new_image(m);
		return true;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 2 && strcmp(theirs, "none") == 0) {
		snprintf(why, sizeof(why), "%s does not know -L (a preforkd without in-place "
			 "upgrades?): it cannot take the running workers over; restart instead", up.path);
		fail(m, why);
		return true;
	}
	if (up.killed)
		snprintf(why, sizeof(why), "%s -t did not finish within %u ms", up.path,
			 UPGRADE_CHECK_TIMEOUT_MS);
	else if (WIFEXITED(status))
		snprintf(why, sizeof(why), "%s -t -c %s exited with status %d: %s", up.path,
			 m->opts->conf_path, WEXITSTATUS(status), out);
	else
		snprintf(why, sizeof(why), "%s -t -c %s was killed by signal %d (%s)", up.path,
			 m->opts->conf_path, WTERMSIG(status), strsignal(WTERMSIG(status)));
	fail(m, why);
	return true;
}

void upgrade_tend(struct master *m)
{
	if (up.check_pid > 0 && !up.killed && m->now >= up.deadline) {
		/* Ours, not reaped yet: the pid is still its. */
		kill(up.check_pid, SIGKILL);
		up.killed = true;
	}
}

uint64_t upgrade_next_deadline(void)
{
	return up.check_pid > 0 && !up.killed ? up.deadline : 0;
}
