/* SPDX-License-Identifier: ISC */
/* addrindex.c - finds equal and colliding listen addresses without comparing every pair.
 *
 * address_overlaps() in one tree of keys: every address is filed under the
 * keys that another address colliding with it would look up. Unix: its
 * sockaddr bytes, whatever the socket type. IP: the exact address; its
 * socket type and port (what "*:P" collides with); and either "wildcard
 * on this port" or its family and port, plus "any-address on this family
 * and port" for 0.0.0.0:P and [::]:P. Each key keeps the first id filed
 * under it, so the smallest id of the keys a lookup finds is the first
 * colliding address, as a loop over every pair would find it. */
#include "config.h"

#include "common/addrindex.h"

#include <search.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum key_kind {
	KEY_EXACT,		/* address_equal() */
	KEY_UNIX,		/* one file or abstract name */
	KEY_PORT,		/* any IP address on this socket type and port */
	KEY_WILDCARD_PORT,	/* "*:P" on this socket type and port */
	KEY_FAMILY_PORT,	/* not "*:P": this family, socket type and port */
	KEY_ANY_FAMILY_PORT,	/* 0.0.0.0:P or [::]:P, not "*:P" */
};

struct ix_key {
	enum key_kind kind;
	int socktype, family;
	uint16_t port;
	bool wildcard;
	socklen_t len;
	const unsigned char *sa;	/* len bytes: KEY_EXACT and KEY_UNIX only */
	size_t id;
};

static int key_cmp(const void *pa, const void *pb)
{
	const struct ix_key *a = pa, *b = pb;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->socktype != b->socktype)
		return a->socktype < b->socktype ? -1 : 1;
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if (a->wildcard != b->wildcard)
		return a->wildcard ? 1 : -1;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return a->len ? memcmp(a->sa, b->sa, a->len) : 0;
}

/* Only the fields of its kind are set: the others stay 0 and compare equal. */
static struct ix_key key_of(enum key_kind kind, const struct address *a)
{
	struct ix_key k = { .kind = kind };

	switch (kind) {
	case KEY_EXACT:
		k.wildcard = a->wildcard;
		k.family = a->family;
		k.socktype = a->socktype;
		/* fall through */
	case KEY_UNIX:
		k.len = a->len;
		k.sa = (const unsigned char *)&a->sa;
		break;
	case KEY_FAMILY_PORT:
	case KEY_ANY_FAMILY_PORT:
		k.family = a->family;
		/* fall through */
	case KEY_PORT:
	case KEY_WILDCARD_PORT:
		k.socktype = a->socktype;
		k.port = address_port(a);
		break;
	}
	return k;
}

/* The keys a is filed under; returns how many. */
static size_t keys_filed(const struct address *a, enum key_kind kinds[4])
{
	size_t n = 0;

	kinds[n++] = KEY_EXACT;
	if (a->family == AF_UNIX) {
		kinds[n++] = KEY_UNIX;
		return n;
	}
	kinds[n++] = KEY_PORT;
	if (a->wildcard) {
		kinds[n++] = KEY_WILDCARD_PORT;
		return n;
	}
	kinds[n++] = KEY_FAMILY_PORT;
	if (address_is_any(a))
		kinds[n++] = KEY_ANY_FAMILY_PORT;
	return n;
}

/* The keys to look up for everything a collides with; returns how many. */
static size_t keys_colliding(const struct address *a, enum key_kind kinds[3])
{
	size_t n = 0;

	if (a->family == AF_UNIX) {
		kinds[n++] = KEY_UNIX;
		return n;
	}
	kinds[n++] = KEY_EXACT;
	if (a->wildcard) {
		kinds[n++] = KEY_PORT;
		return n;
	}
	kinds[n++] = KEY_WILDCARD_PORT;
	kinds[n++] = address_is_any(a) ? KEY_FAMILY_PORT : KEY_ANY_FAMILY_PORT;
	return n;
}

/* A stored key owns a copy of its address bytes, right after it. */
static struct ix_key *key_copy(const struct ix_key *k)
{
	struct ix_key *copy = malloc(sizeof(*copy) + k->len);

	if (!copy)
		return NULL;
	*copy = *k;
	if (k->len) {
		memcpy(copy + 1, k->sa, k->len);
		copy->sa = (const unsigned char *)(copy + 1);
	}
	return copy;
}

int addr_index_add(struct addr_index *ix, const struct address *a, size_t id)
{
	enum key_kind kinds[4];
	size_t n = keys_filed(a, kinds);

	for (size_t i = 0; i < n; i++) {
		struct ix_key k = key_of(kinds[i], a), *stored, **found;

		k.id = id;
		if (tfind(&k, &ix->root, key_cmp))
			continue;	/* an earlier id answers for this key */
		stored = key_copy(&k);
		found = stored ? tsearch(stored, &ix->root, key_cmp) : NULL;
		if (!found) {
			free(stored);
			return -1;
		}
	}
	return 0;
}

static bool find_first(const struct addr_index *ix, const struct address *a,
		       const enum key_kind *kinds, size_t n, size_t *id)
{
	bool found = false;

	for (size_t i = 0; i < n; i++) {
		struct ix_key k = key_of(kinds[i], a);
		struct ix_key **hit = tfind(&k, &ix->root, key_cmp);

		if (hit && (!found || (*hit)->id < *id)) {
			*id = (*hit)->id;
			found = true;
		}
	}
	return found;
}

bool addr_index_find_equal(const struct addr_index *ix, const struct address *a, size_t *id)
{
	static const enum key_kind exact[] = { KEY_EXACT };

	return find_first(ix, a, exact, 1, id);
}

bool addr_index_find_overlap(const struct addr_index *ix, const struct address *a, size_t *id)
{
	enum key_kind kinds[3];

	return find_first(ix, a, kinds, keys_colliding(a, kinds), id);
}

void addr_index_clear(struct addr_index *ix)
{
	tdestroy(ix->root, free);
	ix->root = NULL;
}
