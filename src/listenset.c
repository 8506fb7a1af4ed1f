/* listenset.c - finds or opens the listeners a config needs, closes those no generation uses.
 *
 * A reload keys listeners by their configured address: an address that stays
 * in the config keeps its descriptor, so its accept queue is never closed and
 * no client is refused while the worker generations change over. */
#include "config.h"

#include "listenset.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "activation.h"
#include "conf.h"
#include "listener.h"
#include "log.h"

static struct listener *find_open(const struct listen_set *set, const struct address *spec)
{
	for (size_t i = 0; i < set->n; i++)
		if (address_equal(&set->ls[i]->spec, spec))
			return set->ls[i];
	return NULL;
}

/* The exclusive-bind guard would refuse such an address with "in use by
 * another process" when the other process is us; say what really happened. */
static const struct listener *find_overlapping(const struct listen_set *set,
					       const struct address *spec)
{
	for (size_t i = 0; i < set->n; i++)
		if (address_overlaps(&set->ls[i]->spec, spec))
			return set->ls[i];
	return NULL;
}

/* A live socket file that is one of ours reached by another path (through a
 * symlinked directory): the stale-file probe would blame "another process". */
static const struct listener *find_same_file(const struct listen_set *set,
					     const struct address *spec)
{
	const char *path = address_unix_path(spec);
	struct stat st;

	if (!path || lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return NULL;
	for (size_t i = 0; i < set->n; i++)
		if (set->ls[i]->owns_file && set->ls[i]->file_dev == st.st_dev &&
		    set->ls[i]->file_ino == st.st_ino)
			return set->ls[i];
	return NULL;
}

static struct listener *open_new(struct listen_set *set, const struct service *svc, size_t svc_idx,
				 size_t idx, struct activation *act)
{
	const struct address *spec = &svc->listen[idx];
	struct activated_fd *a = act ? activation_find(act, svc_idx, idx) : NULL;
	const struct listener *other = find_overlapping(set, spec);
	struct listener *l, **grown;
	int rc;

	if (other) {
		log_error("listen %s (service %s) overlaps %s, which is still open: change it in "
			  "two reloads, removing the old address first", spec->text, svc->name,
			  other->spec.text);
		return NULL;
	}
	other = find_same_file(set, spec);
	if (other) {
		log_error("listen %s (service %s): this is the socket file of %s, which preforkd "
			  "already listens on (one file reached by two paths, e.g. through a "
			  "symlinked directory); list it once", spec->text, svc->name,
			  other->spec.text);
		return NULL;
	}
	grown = realloc(set->ls, (set->n + 1) * sizeof(*set->ls));
	l = calloc(1, sizeof(*l));
	if (grown)
		set->ls = grown;
	if (!grown || !l) {
		log_error("out of memory for listener %s", spec->text);
		free(l);
		return NULL;
	}
	if (a) {
		rc = listener_adopt(l, spec, a->fd, &a->addr, svc);
		a->taken = true;	/* the listener owns the descriptor either way */
		if (rc < 0)
			listener_close(l, false);
	} else {
		rc = listener_open(l, spec, svc);
	}
	if (rc < 0) {
		free(l);
		return NULL;
	}
	set->ls[set->n++] = l;
	return l;
}

int listen_set_acquire(struct listen_set *set, const struct config *conf, struct activation *act,
		       struct service_listeners *out)
{
	for (size_t i = 0; i < conf->nservices; i++) {
		const struct service *svc = &conf->services[i];

		out[i].ls = calloc(svc->nlisten, sizeof(*out[i].ls));
		out[i].n = 0;
		if (!out[i].ls) {
			log_error("out of memory for the listeners of service %s", svc->name);
			return -1;
		}
		for (size_t j = 0; j < svc->nlisten; j++) {
			struct listener *l = find_open(set, &svc->listen[j]);

			if (l)
				listener_update(l, svc);
			else if (!(l = open_new(set, svc, i, j, act)))
				return -1;
			out[i].ls[out[i].n++] = l;
		}
	}
	return 0;
}

void listen_set_unmark(struct listen_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		set->ls[i]->marked = false;
}

void listen_set_mark(const struct service_listeners *svc_ls, size_t nservices)
{
	for (size_t i = 0; i < nservices; i++)
		for (size_t j = 0; j < svc_ls[i].n; j++)
			svc_ls[i].ls[j]->marked = true;
}

void listen_set_sweep(struct listen_set *set)
{
	size_t kept = 0;

	for (size_t i = 0; i < set->n; i++) {
		struct listener *l = set->ls[i];

		if (l->marked) {
			set->ls[kept++] = l;
			continue;
		}
		if (l->adopted)
			log_notice("%s is no longer in the config: closing preforkd's copy (the socket "
				   "unit still holds it until it is stopped)", l->addr.text);
		else
			log_info("%s is no longer in the config: closed", l->addr.text);
		listener_close(l, true);
		free(l);
	}
	set->n = kept;
}

void listen_set_close_all(struct listen_set *set, bool remove_files)
{
	for (size_t i = 0; i < set->n; i++) {
		listener_close(set->ls[i], remove_files);
		free(set->ls[i]);
	}
	free(set->ls);
	set->ls = NULL;
	set->n = 0;
}
