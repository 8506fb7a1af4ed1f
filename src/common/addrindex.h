/* SPDX-License-Identifier: ISC */
/* addrindex.h - an index of listen addresses: "is it there" and "would binding collide", in log time. */
#ifndef PREFORKD_ADDRINDEX_H
#define PREFORKD_ADDRINDEX_H

#include <stdbool.h>
#include <stddef.h>

#include "common/address.h"

struct addr_index {
	void *root;	/* tsearch tree of keys, each with the first id recorded under it */
};

/* Records a under id. Ids are given in increasing order, so that a lookup
 * answers the first recorded address that matches. -1: out of memory. */
int addr_index_add(struct addr_index *ix, const struct address *a, size_t id);
/* The first recorded address equal to a (address_equal()). */
bool addr_index_find_equal(const struct addr_index *ix, const struct address *a, size_t *id);
/* The first recorded address that a would collide with at bind, with
 * exactly the rule of address_overlaps(). */
bool addr_index_find_overlap(const struct addr_index *ix, const struct address *a, size_t *id);
void addr_index_clear(struct addr_index *ix);

#endif
