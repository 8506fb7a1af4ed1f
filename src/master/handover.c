/* SPDX-License-Identifier: ISC */
/* handover.c - the manifest an upgrading master writes for the image it execs, and the adoption of it.
 *
 * A manifest is text, one thing a line, in a sealed memfd whose number the
 * next image finds in $PREFORKD_HANDOVER. Descriptors keep their numbers
 * across execve, so a line names a descriptor by its number. Strings are
 * written after '=' with every byte that is not printable ASCII, a space or
 * '%' as %XX. The first line says the format, the last one is "end": a
 * manifest without it was cut short and is refused, as is one of another
 * format or from another pid. Only descriptors the manifest names lose
 * close-on-exec (upgrade.c); the new image sets it again on each it claims
 * and closes any other that arrived without it, so nothing stays open by
 * accident. Listener lines come first: a refused manifest still gives the
 * listeners it holds to the fresh start, whose clients then wait in the
 * kernel's queues instead of being refused. */
#include "config.h"

#include "master/handover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fdutil.h"
#include "common/log.h"
#include "common/version.h"
#include "conf/conf.h"
#include "master/appworker.h"
#include "master/control.h"
#include "master/generation.h"
#include "master/listener.h"
#include "master/master.h"
#include "master/master_private.h"
#include "master/metrics.h"
#include "master/notify.h"
#include "master/workernotify.h"
#include "worker/counters.h"
#include "worker/limits.h"

#define MANIFEST_MAX (64u << 20)
#define FIELDS_MAX 80
#define ABANDON_POLL_MS 20
#define MASTER_FIELDS 11
#define CLIENTS_MAX 16		/* control clients waiting for the upgrade */

const char *handover_layout(void)
{
	static char text[64];

	if (!text[0])
		snprintf(text, sizeof(text), "counters=%dx%zu,limits=%lu", COUNTERS,
			 sizeof(struct counter_row), limits_layout());
	return text;
}

/* ---- writing ---- */

static int fds_add(int **v, size_t *n, size_t *cap, int fd)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 32;
		int *more = realloc(*v, c * sizeof(*more));

		if (!more)
			return -1;
		*v = more;
		*cap = c;
	}
	(*v)[(*n)++] = fd;
	return 0;
}

static int inherit(struct handover_fds *h, int fd)
{
	return fd < 0 ? 0 : fds_add(&h->fds, &h->n, &h->cap, fd);
}

void handover_fds_free(struct handover_fds *h)
{
	for (size_t i = 0; i < h->nowned; i++)
		close(h->owned[i]);
	free(h->owned);
	free(h->fds);
	*h = (struct handover_fds){ 0 };
}

static void put_text(FILE *f, const char *s)
{
	fputc('=', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '%')
			fprintf(f, "%%%02X", *p);
		else
			fputc(*p, f);
}

static void put_listener(FILE *f, const char *word, const struct listener *l)
{
	fprintf(f, "%s %d %d %d %d %d %llu %llu ", word, l->fd, l->backlog, l->adopted,
		l->in_store, l->owns_file, (unsigned long long)l->file_dev,
		(unsigned long long)l->file_ino);
	put_text(f, l->spec.text);
	fputc('\n', f);
}

/* A sealed memfd holding len bytes of text; -1 (logged). */
static int sealed_memfd(const char *name, const char *text, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || fd_write_all(fd, text, len) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0 ||
	    lseek(fd, 0, SEEK_SET) < 0) {
		log_errno(LOG_ERR, errno, "memfd %s", name);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int put_generation(FILE *f, struct generation *g, struct handover_fds *h)
{
	const char *text = g->conf->text ? g->conf->text : "";
	int conf_fd = sealed_memfd("preforkd-handover-config", text, strlen(text));

	if (conf_fd < 0 || fds_add(&h->owned, &h->nowned, &h->owned_cap, conf_fd) < 0 ||
	    inherit(h, conf_fd) < 0 || inherit(h, counters_fd(g->counters)) < 0)
		return -1;
	fprintf(f, "generation %u %s %d %d %llu %d ", g->id,
		g->role == GEN_SERVING ? "serving" : "draining", conf_fd, counters_fd(g->counters),
		(unsigned long long)g->deadline, g->quit_sent);
	put_text(f, g->conf->path);
	fputc('\n', f);
	for (size_t i = 0; i < g->conf->nservices; i++) {
		fprintf(f, "pool %zu %u %d\n", i, g->pools[i].target, g->pools[i].pinned);
		if (!g->limits[i])
			continue;
		if (inherit(h, limits_fd(g->limits[i])) < 0)
			return -1;
		fprintf(f, "limits %zu %d\n", i, limits_fd(g->limits[i]));
	}
	for (size_t i = 0; i < g->nslots; i++) {
		const struct slot *s = g->slots[i];
		int out = s->out ? appworker_output_fd(s) : -1;

		if (s->state == SLOT_DONE && !s->has_row)
			continue;
		if (inherit(h, s->channel_fd) < 0 || inherit(h, out) < 0)
			return -1;
		fprintf(f, "slot %zu %u %d %ld %u %d %d %d %llu %llu %u %d %llu %llu\n", s->service,
			s->index, (int)s->state, (long)s->pid, s->row, s->has_row, s->channel_fd, out,
			(unsigned long long)s->started_ms, (unsigned long long)s->respawn_at_ms,
			s->quick_failures, (int)s->retire, (unsigned long long)s->stop_deadline,
			(unsigned long long)s->hung_kill_at);
	}
	return 0;
}

static void put_totals(FILE *f, const struct service_totals *t)
{
	fputs("totals ", f);
	put_text(f, t->name);
	for (int k = 0; k < COUNTERS; k++)
		fprintf(f, " %llu", (unsigned long long)t->v[k]);
	fprintf(f, " %llu %llu %llu", (unsigned long long)t->restarts_exit,
		(unsigned long long)t->restarts_signal, (unsigned long long)t->hangs);
	for (int k = 0; k < RETIRE_REASONS; k++)
		fprintf(f, " %llu", (unsigned long long)t->recycles[k]);
	for (int d = 0; d < 2; d++)
		for (int k = 0; k < SCALE_REASONS; k++)
			fprintf(f, " %llu", (unsigned long long)t->scale_events[d][k]);
	fputc('\n', f);
}

int handover_write(struct master *m, struct handover_fds *h)
{
	const struct listener *ml[8];
	const char *wn_address, *wn_dir;
	int cfds[CLIENTS_MAX];
	pid_t cpids[CLIENTS_MAX];
	char *text = NULL;
	size_t len = 0, nml;
	int fd, wn_fd, rc = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		log_errno(LOG_ERR, errno, "open_memstream for the handover");
		return -1;
	}
	fprintf(f, "preforkd-handover %d\nlayout %s\nfrom ", HANDOVER_FORMAT, handover_layout());
	put_text(f, preforkd_version);
	fprintf(f, " %ld\n", (long)m->pid);
	/* First, so that a manifest cut short still gives the listeners. */
	for (size_t i = 0; i < m->listeners.n && rc == 0; i++) {
		rc = inherit(h, m->listeners.ls[i]->fd);
		put_listener(f, "listener", m->listeners.ls[i]);
	}
	fprintf(f, "master %u %u %llu %llu %llu %lld %d %llu %lld %d %u\n", m->last_generation,
		m->reload_seq, (unsigned long long)m->reloads_ok, (unsigned long long)m->reloads_failed,
		(unsigned long long)m->last_reload_ms, (long long)m->last_reload_wall,
		m->last_reload_ok, (unsigned long long)m->started_ms, (long long)m->started_wall,
		m->ready_announced, m->op_seq);
	fputs("last-reload ", f);
	put_text(f, m->last_reload);
	fputc('\n', f);
	if (m->pidfile && m->pidfile_fd >= 0 && rc == 0) {
		rc = inherit(h, m->pidfile_fd);
		fprintf(f, "pidfile %d ", m->pidfile_fd);
		put_text(f, m->pidfile);
		fputc('\n', f);
	}
	if (control_listener() && rc == 0) {
		rc = inherit(h, control_listener()->fd);
		put_listener(f, "control", control_listener());
	}
	for (size_t i = 0, n = control_upgrade_clients(cfds, cpids, CLIENTS_MAX);
	     rc == 0 && i < n && i < CLIENTS_MAX; i++) {
		rc = inherit(h, cfds[i]);
		fprintf(f, "control-client %d %ld\n", cfds[i], (long)cpids[i]);
	}
	nml = metrics_listeners(ml, sizeof(ml) / sizeof(ml[0]));
	for (size_t i = 0; i < nml && rc == 0; i++) {
		rc = inherit(h, ml[i]->fd);
		put_listener(f, "metrics", ml[i]);
	}
	wn_fd = workernotify_handover(&wn_address, &wn_dir);
	if (wn_fd >= 0 && rc == 0) {
		rc = inherit(h, wn_fd);
		fprintf(f, "workernotify %d ", wn_fd);
		put_text(f, wn_address);
		fputc(' ', f);
		put_text(f, wn_dir);
		fputc('\n', f);
	}
	if (rc == 0)
		rc = put_generation(f, m->current, h);
	for (struct generation *g = m->draining; g && rc == 0; g = g->next)
		rc = put_generation(f, g, h);
	for (size_t i = 0; i < m->ntotals; i++)
		put_totals(f, &m->totals[i]);
	fputs("end\n", f);
	if (fclose(f) != 0 || rc < 0 || !text) {
		log_error("out of memory for the handover");
		free(text);
		handover_fds_free(h);
		return -1;
	}
	fd = sealed_memfd("preforkd-handover", text, len);
	free(text);
	if (fd < 0)
		handover_fds_free(h);
	return fd;
}

/* ---- reading ---- */

/* What the new image has made of the manifest so far. */
struct adoption {
	struct master *m;
	struct generation *g;		/* the one whose lines these are */
	struct generation **draining_tail;
	unsigned listeners, workers, generations;
	unsigned long long master[MASTER_FIELDS];	/* the "master" line */
	bool ended;
};

/* Decodes a string written by put_text in place; NULL when it is not one. */
static char *take_text(char *field)
{
	char *out, *in;

	if (!field || field[0] != '=')
		return NULL;
	out = in = field + 1;
	while (*in) {
		unsigned v;

		if (*in == '%' && sscanf(in + 1, "%2x", &v) == 1 && v) {
			*out++ = (char)v;
			in += 3;
		} else {
			*out++ = *in++;
		}
	}
	*out = '\0';
	return field + 1;
}

static bool num(const char *field, unsigned long long *v)
{
	char *end;

	if (!field || !*field)
		return false;
	errno = 0;
	*v = strtoull(field, &end, 10);
	return errno == 0 && *end == '\0';
}

/* Numbers of fields f[from..to]: false when one is not. */
static bool nums(char **f, size_t nf, size_t from, size_t to, unsigned long long *v)
{
	for (size_t i = from; i <= to; i++)
		if (i >= nf || !num(f[i], &v[i - from]))
			return false;
	return true;
}

/* fd is one the last image handed on: ours from now on, close-on-exec again. */
static int claim(long fd)
{
	int flags;

	if (fd < 3 || fd > INT32_MAX || (flags = fcntl((int)fd, F_GETFD)) < 0) {
		log_error("handover: descriptor %ld is not open", fd);
		return -1;
	}
	fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
	return (int)fd;
}

static int take_listener(char **f, size_t nf, struct listener *l)
{
	unsigned long long v[7];
	char why[160], *spec = nf > 8 ? take_text(f[8]) : NULL;

	if (!nums(f, nf, 1, 7, v) || !spec) {
		log_error("handover: a %s line is not one", f[0]);
		return -1;
	}
	*l = (struct listener){ .fd = -1 };
	if (address_parse(spec, &l->spec, why, sizeof(why)) < 0) {
		log_error("handover: %s: %s", spec, why);
		return -1;
	}
	/* Non-blocking, as ours always are: a worker's accept must never wait. */
	if (claim((long)v[0]) < 0 || fd_set_nonblock_cloexec((int)v[0]) < 0 ||
	    address_of_socket((int)v[0], &l->addr) < 0) {
		log_error("handover: listener %s (fd %llu) is not a socket", spec, v[0]);
		return -1;
	}
	l->fd = (int)v[0];
	l->backlog = (int)v[1];
	l->adopted = v[2];
	l->in_store = v[3];
	l->owns_file = v[4];
	l->file_dev = (dev_t)v[5];
	l->file_ino = (ino_t)v[6];
	return 0;
}

static int add_listener(struct adoption *a, char **f, size_t nf)
{
	struct listen_set *set = &a->m->listeners;
	struct listener *l = calloc(1, sizeof(*l)), **grown;

	grown = realloc(set->ls, (set->n + 1) * sizeof(*set->ls));
	if (grown)
		set->ls = grown;
	if (!l || !grown) {
		free(l);
		log_error("out of memory for the handover");
		return -1;
	}
	if (take_listener(f, nf, l) < 0) {
		free(l);
		return -1;
	}
	set->ls[set->n++] = l;
	a->listeners++;
	return 0;
}

/* The master's own state, applied only once the whole manifest is taken:
 * a refused one leaves a fresh start as fresh as any. */
static int take_master(struct adoption *a, char **f, size_t nf)
{
	return nums(f, nf, 1, MASTER_FIELDS, a->master) ? 0 : -1;
}

static void apply_master(struct master *m, const unsigned long long *v)
{
	m->last_generation = (unsigned)v[0];
	m->reload_seq = (unsigned)v[1];
	m->reloads_ok = v[2];
	m->reloads_failed = v[3];
	m->last_reload_ms = v[4];
	m->last_reload_wall = (time_t)v[5];
	m->last_reload_ok = v[6];
	m->started_ms = v[7];
	m->started_wall = (time_t)v[8];
	m->ready_announced = v[9];
	m->op_seq = (unsigned)v[10];
	if (m->ready_announced)
		notify_adopt_ready();
}

/* The text in a memfd of the handover (a generation's config, the
 * manifest itself), NUL-terminated; the descriptor is closed. */
static char *read_memfd(int fd)
{
	struct stat st;
	char *text = NULL;
	ssize_t n;

	if (fstat(fd, &st) == 0 && st.st_size >= 0 && st.st_size < MANIFEST_MAX &&
	    (text = malloc((size_t)st.st_size + 1))) {
		n = pread(fd, text, (size_t)st.st_size, 0);
		if (n != st.st_size) {
			free(text);
			text = NULL;
		} else {
			text[n] = '\0';
		}
	}
	close(fd);
	return text;
}

/* Each service's listeners, found in the set by configured address; one a
 * draining generation had let go of is not there, and stays NULL. */
static int find_listeners(struct master *m, struct generation *g)
{
	for (size_t i = 0; i < g->conf->nservices; i++) {
		const struct service *svc = &g->conf->services[i];

		g->svc_ls[i].ls = calloc(svc->nlisten ? svc->nlisten : 1, sizeof(*g->svc_ls[i].ls));
		if (!g->svc_ls[i].ls)
			return -1;
		g->svc_ls[i].n = svc->nlisten;
		for (size_t j = 0; j < svc->nlisten; j++)
			for (size_t k = 0; k < m->listeners.n; k++)
				if (strcmp(m->listeners.ls[k]->spec.text, svc->listen[j].text) == 0)
					g->svc_ls[i].ls[j] = m->listeners.ls[k];
		if (g->role == GEN_SERVING)
			for (size_t j = 0; j < svc->nlisten; j++)
				if (!g->svc_ls[i].ls[j]) {
					log_error("handover: %s of service %s has no listener",
						  svc->listen[j].text, svc->name);
					return -1;
				}
	}
	return 0;
}

static int take_generation(struct adoption *a, char **f, size_t nf)
{
	unsigned long long v[6];
	char err[CONF_ERR_MAX], *path = nf > 7 ? take_text(f[7]) : NULL, *text;
	struct config *conf;
	struct generation *g;
	struct counters *c;
	int conf_fd;

	if (!nums(f, nf, 1, 1, v) || nf < 8 || !nums(f, nf, 3, 6, v + 2) || !path ||
	    (strcmp(f[2], "serving") && strcmp(f[2], "draining")))
		return -1;
	if ((conf_fd = claim((long)v[2])) < 0 || !(text = read_memfd(conf_fd)))
		return -1;
	conf = conf_load_text(path, text, err, sizeof(err));
	free(text);
	if (!conf) {
		log_error("handover: the config of generation %llu no longer loads: %s", v[0], err);
		return -1;
	}
	g = generation_new_empty(conf, (unsigned)v[0],
				 strcmp(f[2], "serving") == 0 ? GEN_SERVING : GEN_DRAINING);
	if (!g) {
		conf_free(conf);
		return -1;
	}
	/* Linked first: a failure further on frees it with the rest. */
	if (g->role == GEN_SERVING && !a->m->current) {
		a->m->current = g;
	} else if (g->role == GEN_DRAINING) {
		*a->draining_tail = g;
		a->draining_tail = &g->next;
	} else {
		generation_free(g);
		return -1;
	}
	a->g = g;
	a->generations++;
	counters_free(g->counters);
	g->counters = NULL;
	if (claim((long)v[3]) < 0 || !(c = counters_adopt((int)v[3], generation_rows(g))))
		return -1;
	g->counters = c;
	g->deadline = v[4];
	g->quit_sent = v[5];
	return find_listeners(a->m, g);
}

static int take_pool(struct adoption *a, char **f, size_t nf)
{
	unsigned long long v[3];

	if (!a->g || !nums(f, nf, 1, 3, v) || v[0] >= a->g->conf->nservices)
		return -1;
	a->g->pools[v[0]].target = (unsigned)v[1];
	a->g->pools[v[0]].pinned = v[2];
	return 0;
}

static int take_limits(struct adoption *a, char **f, size_t nf)
{
	unsigned long long v[2];
	struct limits *l;

	if (!a->g || !nums(f, nf, 1, 2, v) || v[0] >= a->g->conf->nservices ||
	    claim((long)v[1]) < 0 || !(l = limits_adopt((int)v[1])))
		return -1;
	limits_free(a->g->limits[v[0]]);
	a->g->limits[v[0]] = l;
	return 0;
}

static int take_slot(struct adoption *a, char **f, size_t nf)
{
	unsigned long long v[14];
	struct generation *g = a->g;
	long channel, out;
	struct slot *s;

	if (!g || !nums(f, nf, 1, 2, v) || !nums(f, nf, 3, 14, v + 2) ||
	    v[0] >= g->conf->nservices || v[2] >= SLOT_STATES || v[11] >= RETIRE_REASONS)
		return -1;
	channel = nf > 7 && f[7][0] == '-' ? -1 : (long)v[6];
	out = nf > 8 && f[8][0] == '-' ? -1 : (long)v[7];
	if (!(s = generation_add_slot(g, v[0], (unsigned)v[1])))
		return -1;
	s->state = (enum slot_state)v[2];
	s->pid = (pid_t)v[3];
	s->started_ms = v[8];
	s->respawn_at_ms = v[9];
	s->quick_failures = (unsigned)v[10];
	s->retire = (enum retire_reason)v[11];
	s->stop_deadline = v[12];
	s->hung_kill_at = v[13];
	if (v[5] && generation_take_row(s, (unsigned)v[4]) < 0)
		return -1;
	if (channel >= 0 && (s->channel_fd = claim(channel)) < 0)
		return -1;
	if (s->channel_fd >= 0 &&
	    epoll_ctl(a->m->epfd, EPOLL_CTL_ADD, s->channel_fd,
		      &(struct epoll_event){ .events = EPOLLIN, .data.ptr = s }) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD) the channel of worker %ld", (long)s->pid);
		return -1;
	}
	if (out >= 0 && (claim(out) < 0 || appworker_adopt(s, a->m->epfd, (int)out) < 0))
		return -1;
	if (s->app && s->state == SLOT_READY)
		appworker_ready(s, a->m->now);	/* its watchdog, if any, counts from now */
	a->workers += slot_alive(s);
	return 0;
}

static int take_totals(struct adoption *a, char **f, size_t nf)
{
	unsigned long long v[COUNTERS + 3 + RETIRE_REASONS + 2 * SCALE_REASONS];
	const size_t nv = sizeof(v) / sizeof(v[0]);
	char *name = nf > 1 ? take_text(f[1]) : NULL;
	struct service_totals *t;
	size_t k = 0;

	if (!name || !nums(f, nf, 2, nv + 1, v) || !(t = master_totals(a->m, name)))
		return -1;
	for (int i = 0; i < COUNTERS; i++)
		t->v[i] = v[k++];
	t->restarts_exit = v[k++];
	t->restarts_signal = v[k++];
	t->hangs = v[k++];
	for (int i = 0; i < RETIRE_REASONS; i++)
		t->recycles[i] = v[k++];
	for (int d = 0; d < 2; d++)
		for (int i = 0; i < SCALE_REASONS; i++)
			t->scale_events[d][i] = v[k++];
	return 0;
}

static int take_line(struct adoption *a, char *line)
{
	char *f[FIELDS_MAX], *save = NULL;
	unsigned long long v[2];
	struct listener l;
	size_t nf = 0;
	char *text, *dir;

	for (char *w = strtok_r(line, " ", &save); w && nf < FIELDS_MAX; w = strtok_r(NULL, " ", &save))
		f[nf++] = w;
	if (nf == 0)
		return 0;
	if (strcmp(f[0], "listener") == 0)
		return add_listener(a, f, nf);
	if (strcmp(f[0], "master") == 0 && take_master(a, f, nf) == 0) {
		/* What the lines after it count on (a waiting client's reload). */
		a->m->reload_seq = (unsigned)a->master[1];
		return 0;
	}
	if (strcmp(f[0], "last-reload") == 0 && (text = take_text(nf > 1 ? f[1] : NULL))) {
		snprintf(a->m->last_reload, sizeof(a->m->last_reload), "%s", text);
		return 0;
	}
	if (strcmp(f[0], "pidfile") == 0 && nums(f, nf, 1, 1, v) && nf > 2 &&
	    (text = take_text(f[2])) && claim((long)v[0]) >= 0) {
		a->m->pidfile_fd = (int)v[0];
		a->m->pidfile = strdup(text);
		return a->m->pidfile ? 0 : -1;
	}
	if (strcmp(f[0], "control") == 0)
		return take_listener(f, nf, &l) < 0 ? -1 : control_adopt(a->m, &l);
	if (strcmp(f[0], "control-client") == 0 && nums(f, nf, 1, 2, v) && claim((long)v[0]) >= 0)
		return control_adopt_client(a->m, (int)v[0], (pid_t)v[1]);
	if (strcmp(f[0], "metrics") == 0)
		return take_listener(f, nf, &l) < 0 ? -1 : metrics_adopt(a->m, &l);
	if (strcmp(f[0], "workernotify") == 0 && nums(f, nf, 1, 1, v) && nf > 3 &&
	    (text = take_text(f[2])) && (dir = take_text(f[3])) && claim((long)v[0]) >= 0)
		return workernotify_adopt((int)v[0], text, dir, a->m->epfd);
	if (strcmp(f[0], "generation") == 0)
		return take_generation(a, f, nf);
	if (strcmp(f[0], "pool") == 0)
		return take_pool(a, f, nf);
	if (strcmp(f[0], "limits") == 0)
		return take_limits(a, f, nf);
	if (strcmp(f[0], "slot") == 0)
		return take_slot(a, f, nf);
	if (strcmp(f[0], "totals") == 0)
		return take_totals(a, f, nf);
	if (strcmp(f[0], "end") == 0 && nf == 1) {
		a->ended = true;
		return 0;
	}
	log_error("handover: a line that is not one: \"%.40s\"", f[0]);
	return -1;
}

/* The manifest's text, from fd (closed); NULL (logged). */
static char *read_manifest(const char *value)
{
	char *end, *text = NULL;
	long fd;

	errno = 0;
	fd = strtol(value, &end, 10);
	if (errno || end == value || *end || fd < 3 || fd > INT32_MAX ||
	    fcntl((int)fd, F_GETFD) < 0) {
		log_error("handover: %s=%s names no open descriptor", HANDOVER_ENV, value);
		return NULL;
	}
	text = read_memfd((int)fd);
	if (!text)
		log_error("handover: the manifest (fd %ld) cannot be read", fd);
	return text;
}

/* Any descriptor above stderr still without close-on-exec came from the
 * last image and nobody claimed it: closed. */
static void close_unclaimed(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int skip = d ? dirfd(d) : -1;

	while (d && (e = readdir(d))) {
		int fd = atoi(e->d_name), flags;

		if (fd < 3 || fd == skip || (flags = fcntl(fd, F_GETFD)) < 0 || flags & FD_CLOEXEC)
			continue;
		log_warn("handover: descriptor %d was handed on but not claimed: closed", fd);
		close(fd);
	}
	if (d)
		closedir(d);
}

int handover_adopt(struct master *m)
{
	const char *value = getenv(HANDOVER_ENV);
	struct adoption a = { .m = m, .draining_tail = &m->draining };
	char *text, *line, *save = NULL;
	char head[64], from[sizeof(m->upgraded_from)];
	int rc = 0;

	if (!value)
		return 0;
	value = strdup(value);
	unsetenv(HANDOVER_ENV);	/* not for the workers, nor the next upgrade */
	text = value ? read_manifest(value) : NULL;
	free((char *)value);
	if (!text) {
		close_unclaimed();
		log_error("handover refused: starting afresh on the config, with the 0 listeners "
			  "it could take");
		return -1;
	}
	snprintf(head, sizeof(head), "preforkd-handover %d\n", HANDOVER_FORMAT);
	if (strncmp(text, head, strlen(head)) != 0) {
		log_error("handover: the manifest is not of format %d (\"%.40s\"): an image of "
			  "another version wrote it", HANDOVER_FORMAT, text);
		rc = -1;
	}
	line = rc == 0 ? strtok_r(text + strlen(head), "\n", &save) : NULL;
	if (line && (strncmp(line, "layout ", 7) != 0 || strcmp(line + 7, handover_layout()) != 0)) {
		log_error("handover: the manifest's shared memory is laid out as \"%.80s\", ours "
			  "as \"layout %s\"", line, handover_layout());
		rc = -1;
	}
	line = rc == 0 ? strtok_r(NULL, "\n", &save) : NULL;
	if (line && strncmp(line, "from =", 6) == 0) {
		char *f = strchr(line + 5, ' ');
		long pid = f ? strtol(f + 1, NULL, 10) : 0;

		*(f ? f : line + 5) = '\0';
		snprintf(from, sizeof(from), "%s", take_text(line + 5) ? line + 6 : "?");
		if (pid != (long)getpid()) {
			log_error("handover: the manifest is of pid %ld, we are %ld", pid,
				  (long)getpid());
			rc = -1;
		}
		line = strtok_r(NULL, "\n", &save);
	} else if (rc == 0) {
		log_error("handover: the manifest does not say whom it is from");
		rc = -1;
	}
	for (; rc == 0 && line && !a.ended; line = strtok_r(NULL, "\n", &save))
		rc = take_line(&a, line);
	if (rc == 0 && !a.ended) {
		log_error("handover: the manifest was cut short (no \"end\" line)");
		rc = -1;
	}
	free(text);
	if (rc == 0 && !m->current) {
		log_error("handover: the manifest has no serving generation");
		rc = -1;
	}
	close_unclaimed();
	if (rc < 0) {
		log_error("handover refused: starting afresh on the config, with the %u listener%s "
			  "it could take", a.listeners, a.listeners == 1 ? "" : "s");
		return -1;
	}
	apply_master(m, a.master);
	snprintf(m->upgraded_from, sizeof(m->upgraded_from), "%s", from);
	log_notice("upgraded in place from preforkd %s: %u listeners, %u workers in %u "
		   "generation%s adopted", from, a.listeners, a.workers, a.generations,
		   a.generations == 1 ? "" : "s");
	return 1;
}

/* ---- a handover refused ---- */

/* Our children now, from /proc: the last image's workers. */
static size_t children(pid_t *out, size_t max)
{
	char path[64];
	size_t n = 0;
	FILE *f;
	long pid;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/children", (long)getpid());
	f = fopen(path, "re");
	while (f && n < max && fscanf(f, "%ld", &pid) == 1)
		out[n++] = (pid_t)pid;
	if (f)
		fclose(f);
	return n;
}

static void signal_children(int sig)
{
	pid_t kids[4096];
	size_t n = children(kids, sizeof(kids) / sizeof(kids[0]));

	for (size_t i = 0; i < n; i++)
		kill(kids[i], sig);
}

void handover_abandon(struct master *m, const struct config *conf)
{
	uint64_t deadline = clock_now_ms() + conf->shutdown_timeout_ms;
	bool killed = false;

	while (m->draining) {
		struct generation *g = m->draining;

		m->draining = g->next;
		generation_free(g);
	}
	generation_free(m->current);
	m->current = NULL;
	close_unclaimed();
	/* Their channels are closed (they drain as orphans); app workers are told. */
	signal_children(SIGTERM);
	for (;;) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);

		if (pid > 0)
			continue;
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			break;	/* ECHILD: every one is gone */
		if (!killed && clock_now_ms() >= deadline) {
			log_warn("handover refused: the last image's workers did not finish within "
				 "shutdown-timeout: killing them");
			signal_children(SIGKILL);
			killed = true;
		}
		nanosleep(&(struct timespec){ 0, ABANDON_POLL_MS * 1000000L }, NULL);
	}
	log_notice("handover refused: the last image's workers are gone");
}
