/* SPDX-License-Identifier: ISC */
/* listenset.c - finds or opens the listeners a config needs, closes those no generation uses.
 *
 * A reload keys listeners by their configured address: an address that stays
 * in the config keeps its descriptor, so its accept queue is never closed and
 * no client is refused while the worker generations change over. */
#include "config.h"

#include "master/listenset.h"

#include <search.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "master/activation.h"
#include "master/fdstore.h"
#include "common/addrindex.h"
#include "conf/conf.h"
#include "master/listener.h"
#include "common/log.h"

/* The set's listeners by configured address (id: index in set->ls) and by
 * the socket file they own, for one acquire: each address is looked up in
 * log time, not compared with every open listener. */
struct set_index {
	struct addr_index specs;
	void *files;	/* tsearch tree of struct listener *, by file_dev and file_ino */
};

static int file_cmp(const void *pa, const void *pb)
{
	const struct listener *a = pa, *b = pb;

	if (a->file_dev != b->file_dev)
		return a->file_dev < b->file_dev ? -1 : 1;
	if (a->file_ino != b->file_ino)
		return a->file_ino < b->file_ino ? -1 : 1;
	return 0;
}

static int set_index_add(struct set_index *ix, struct listener *l, size_t id)
{
	if (addr_index_add(&ix->specs, &l->spec, id) < 0 ||
	    (l->owns_file && !tsearch(l, &ix->files, file_cmp))) {
		log_error("out of memory for the index of listeners (%s)", l->spec.text);
		return -1;
	}
	return 0;
}

static void listener_not_owned(void *l)
{
	(void)l;	/* the set owns its listeners; the tree only points at them */
}

static void set_index_clear(struct set_index *ix)
{
	addr_index_clear(&ix->specs);
	tdestroy(ix->files, listener_not_owned);
	ix->files = NULL;
}

/* A live socket file that is one of ours reached by another path (through a
 * symlinked directory): the stale-file probe would blame "another process". */
static const struct listener *find_same_file(const struct set_index *ix,
					     const struct address *spec)
{
	const char *path = address_unix_path(spec);
	struct listener key = { 0 };
	struct listener **found;
	struct stat st;

	if (!path || lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return NULL;
	key.file_dev = st.st_dev;
	key.file_ino = st.st_ino;
	found = tfind(&key, &ix->files, file_cmp);
	return found ? *found : NULL;
}

static struct listener *open_new(struct listen_set *set, struct set_index *ix,
				 const struct service *svc, size_t svc_idx, size_t idx,
				 struct activation *act)
{
	const struct address *spec = &svc->listen[idx];
	struct activated_fd *a = act ? activation_find(act, svc_idx, idx) : NULL;
	const struct listener *other = NULL;
	struct listener *l, **grown;
	size_t id;
	int rc;

	/* The exclusive-bind guard would refuse such an address with "in use by
	 * another process" when the other process is us; say what happened. */
	if (addr_index_find_overlap(&ix->specs, spec, &id))
		other = set->ls[id];
	if (other) {
		log_error("listen %s (service %s) overlaps %s, which is still open: change it in "
			  "two reloads, removing the old address first", spec->text, svc->name,
			  other->spec.text);
		return NULL;
	}
	other = find_same_file(ix, spec);
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
		rc = listener_adopt(l, spec, a->fd, &a->addr, svc, a->stored);
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
	return set_index_add(ix, l, set->n - 1) < 0 ? NULL : l;
}

int listen_set_acquire(struct listen_set *set, const struct config *conf, struct activation *act,
		       struct service_listeners *out)
{
	struct set_index ix = { 0 };
	int rc = 0;

	for (size_t i = 0; i < set->n && rc == 0; i++)
		rc = set_index_add(&ix, set->ls[i], i);
	for (size_t i = 0; i < conf->nservices && rc == 0; i++) {
		const struct service *svc = &conf->services[i];

		out[i].ls = calloc(svc->nlisten, sizeof(*out[i].ls));
		out[i].n = 0;
		if (!out[i].ls) {
			log_error("out of memory for the listeners of service %s", svc->name);
			rc = -1;
		}
		for (size_t j = 0; j < svc->nlisten && rc == 0; j++) {
			struct listener *l = NULL;
			size_t id;

			if (addr_index_find_equal(&ix.specs, &svc->listen[j], &id)) {
				l = set->ls[id];
				listener_update(l, svc);
			} else if (!(l = open_new(set, &ix, svc, i, j, act))) {
				rc = -1;
				break;
			}
			out[i].ls[out[i].n++] = l;
		}
	}
	set_index_clear(&ix);
	return rc;
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
		fdstore_forget(l);
		listener_close(l, true);
		free(l);
	}
	set->n = kept;
}

void listen_set_close_all(struct listen_set *set, bool remove_files)
{
	/* One in the fd store stays for the next preforkd: its file too. */
	for (size_t i = 0; i < set->n; i++) {
		listener_close(set->ls[i], remove_files && !set->ls[i]->in_store);
		free(set->ls[i]);
	}
	free(set->ls);
	set->ls = NULL;
	set->n = 0;
}
