/* SPDX-License-Identifier: ISC */
/* fdstore.c - listeners kept in the service manager's fd store, so that a restart refuses nobody.
 *
 * Under systemd with FileDescriptorStoreMax= (and $FDSTORE), each listener preforkd bound
 * itself is pushed to the store (FDSTORE=1) with a name that says its
 * configured address; one a reload drops is removed (FDSTOREREMOVE=1).
 * The store keeps a duplicate of the socket, so when preforkd stops the
 * socket stays open and the kernel queues new clients until the next
 * preforkd is handed it back (LISTEN_FDS, by name: activation.c) and
 * serves them. Listeners adopted from a socket unit are the unit's, and
 * not pushed. Without a store ($FDSTORE unset or 0, or no service
 * manager) this does nothing, and socket files are removed at a stop as
 * always. */
#include "config.h"

#include "master/fdstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "master/listener.h"
#include "master/listenset.h"
#include "master/notify.h"

#define FDSTORE_PREFIX "preforkd."
#define FDNAME_MAX 255	/* systemd's limit */

static bool pending;

static bool kept_as_is(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("._/@*[]-", c);
}

int fdstore_name(const char *text, char *buf, size_t len)
{
	size_t n = strlen(FDSTORE_PREFIX);

	if (len <= FDNAME_MAX || len <= n)
		return -1;
	memcpy(buf, FDSTORE_PREFIX, n);
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (n + 4 > FDNAME_MAX)
			return -1;
		if (kept_as_is(*p))
			buf[n++] = (char)*p;
		else
			n += (size_t)snprintf(buf + n, 4, "%%%02X", *p);
	}
	buf[n] = '\0';
	return 0;
}

bool fdstore_decode(const char *name, char *text, size_t len)
{
	size_t n = 0, plen = strlen(FDSTORE_PREFIX);

	if (strncmp(name, FDSTORE_PREFIX, plen) != 0)
		return false;
	for (const char *p = name + plen; *p && n + 1 < len; p++) {
		unsigned v;

		if (*p == '%' && sscanf(p + 1, "%2x", &v) == 1 && p[1] && p[2]) {
			text[n++] = (char)v;
			p += 2;
		} else {
			text[n++] = *p;
		}
	}
	text[n] = '\0';
	return true;
}

void fdstore_push(struct listen_set *set)
{
	char name[FDNAME_MAX + 1];

	pending = false;
	if (!notify_fdstore_enabled())
		return;
	for (size_t i = 0; i < set->n; i++) {
		struct listener *l = set->ls[i];

		if (l->adopted || l->in_store || l->fd < 0)
			continue;
		if (fdstore_name(l->spec.text, name, sizeof(name)) < 0) {
			if (!l->store_refused)
				log_warn("%s: its name would be longer than the fd store takes; it is "
					 "not kept across restarts", l->spec.text);
			l->store_refused = true;
			continue;
		}
		if (notify_fdstore(l->fd, name) < 0) {
			pending = true;	/* the manager's queue is full: next turn */
			continue;
		}
		l->in_store = true;
		log_debug("%s: in the service manager's fd store as %s", l->spec.text, name);
	}
}

void fdstore_forget(struct listener *l)
{
	char name[FDNAME_MAX + 1];

	if (!l->in_store || fdstore_name(l->spec.text, name, sizeof(name)) < 0)
		return;
	notify_fdstore_remove(name);
	l->in_store = false;
}

bool fdstore_pending(void)
{
	return pending;
}
