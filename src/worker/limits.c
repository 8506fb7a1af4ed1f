/* SPDX-License-Identifier: ISC */
/* limits.c - per-source and per-service connection counts, shared by a service's workers.
 *
 * The master maps one region per service and generation before it forks
 * the workers. Each worker counts its own connections in its own row (a
 * small hash table of source -> count), so that when a worker dies the
 * master can drop everything it counted by marking the row dead, without
 * knowing what was in it and without taking the lock. Checking a limit and
 * counting the connection happen under one process-shared robust mutex, so
 * two workers accepting the same source at once cannot both slip under the
 * limit; the lock is held for a table lookup per worker, and waited for at
 * most LOCK_WAIT_MS (a worker stopped with SIGSTOP while holding it must
 * not stop the others). The region is a memfd, its size sealed, so that
 * its descriptor can be handed on (a re-exec'd master maps it again). */
#include "config.h"

#include "worker/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "worker/access.h"
#include "common/log.h"

#define LOCK_WAIT_MS 100
#define ROW_CAPACITY_MAX 65536	/* sources one worker can count at once */

enum { KEY_IP = 1, KEY_UID = 2, KEY_UNKNOWN = 3 };

struct entry {
	struct source_key key;
	uint32_t count;		/* 0: free */
};

struct row {
	atomic_uint dead;	/* set by the master when the worker exits */
	uint32_t total;
	struct entry entries[];
};

struct limits {
	pthread_mutex_t lock;
	unsigned nrows;
	unsigned rows_used;	/* 1 + the highest row ever claimed: the rows a check reads */
	unsigned capacity;	/* entries per row: a power of two, or 0 without max-per-source */
	unsigned max_per_source, max_total;
	size_t row_size, map_size;
	int fd;			/* the master's memfd of the region; closed in the workers */
	_Alignas(64) unsigned char rows[];
};

static struct row *row_at(struct limits *l, unsigned i)
{
	return (struct row *)(l->rows + (size_t)i * l->row_size);
}

static uint32_t key_hash(const struct source_key *k)
{
	const unsigned char *p = (const unsigned char *)k;
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* The slot holding k, or the free slot where it would go; -1 if the row is full. */
static long find_slot(const struct limits *l, const struct row *r, const struct source_key *k)
{
	uint32_t mask = l->capacity - 1, i = key_hash(k) & mask;

	for (unsigned probes = 0; probes < l->capacity; probes++, i = (i + 1) & mask)
		if (r->entries[i].count == 0 || memcmp(&r->entries[i].key, k, sizeof(*k)) == 0)
			return i;
	return -1;
}

/* Linear probing without tombstones: later entries of the probe run move
 * back into the hole, so lookups can stop at the first free slot. */
static void remove_slot(const struct limits *l, struct row *r, uint32_t hole)
{
	uint32_t mask = l->capacity - 1, j = hole;

	for (;;) {
		j = (j + 1) & mask;
		if (r->entries[j].count == 0)
			break;
		uint32_t home = key_hash(&r->entries[j].key) & mask;
		/* Movable unless its home lies cyclically in (hole, j]. */
		bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);

		if (!stays) {
			r->entries[hole] = r->entries[j];
			hole = j;
		}
	}
	r->entries[hole].count = 0;
}

static unsigned pow2_at_least(unsigned n)
{
	unsigned p = 1;

	while (p < n && p < ROW_CAPACITY_MAX)
		p <<= 1;
	return p;
}

struct limits *limits_new(unsigned nrows, unsigned max_per_source, unsigned max_total,
			  unsigned max_connections_per_row)
{
	pthread_mutexattr_t attr;
	struct limits *l;
	unsigned capacity = 0;
	size_t row_size, map_size;
	int fd;

	if (!max_per_source && !max_total)
		return NULL;
	/* Half full at most, so that probe runs stay short. */
	if (max_per_source)
		capacity = pow2_at_least(max_connections_per_row * 2);
	row_size = (sizeof(struct row) + capacity * sizeof(struct entry) + 63) & ~(size_t)63;
	map_size = offsetof(struct limits, rows) + row_size * nrows;
	fd = memfd_create("preforkd-limits", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, (off_t)map_size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
		log_errno(LOG_ERR, errno, "memfd of %zu bytes for connection limits", map_size);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	l = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (l == MAP_FAILED) {
		log_errno(LOG_ERR, errno, "mmap %zu bytes for connection limits", map_size);
		close(fd);
		return NULL;
	}
	l->fd = fd;
	l->nrows = nrows;
	l->capacity = capacity;
	l->max_per_source = max_per_source;
	l->max_total = max_total;
	l->row_size = row_size;
	l->map_size = map_size;
	for (unsigned i = 0; i < nrows; i++)
		atomic_store(&row_at(l, i)->dead, 1);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&l->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	return l;
}

unsigned long limits_layout(void)
{
	return (unsigned long)sizeof(struct limits) << 20 | sizeof(struct row) << 10 |
	       sizeof(struct entry);
}

struct limits *limits_adopt(int fd)
{
	struct limits *l;
	struct stat st;

	if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(*l)) {
		log_error("handover: the limits' memfd (fd %d) is too short", fd);
		return NULL;
	}
	l = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (l == MAP_FAILED) {
		log_errno(LOG_ERR, errno, "mmap the limits' memfd (fd %d)", fd);
		return NULL;
	}
	if (l->map_size != (size_t)st.st_size || l->fd != fd) {
		log_error("handover: the limits' memfd (fd %d) is not what it says", fd);
		munmap(l, (size_t)st.st_size);
		return NULL;
	}
	return l;
}

/* Only the master's mapping goes; workers of the generation keep theirs. */
void limits_free(struct limits *l)
{
	if (!l)
		return;
	close(l->fd);
	munmap(l, l->map_size);
}

int limits_fd(const struct limits *l)
{
	return l ? l->fd : -1;
}

void limits_row_dead(struct limits *l, unsigned row)
{
	if (l && row < l->nrows)
		atomic_store(&row_at(l, row)->dead, 1);
}

static bool limits_lock(struct limits *l)
{
	struct timespec deadline;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_nsec += LOCK_WAIT_MS * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	rc = pthread_mutex_clocklock(&l->lock, CLOCK_MONOTONIC, &deadline);
	if (rc == EOWNERDEAD) {
		/* A worker died holding it; its row is dead, everything else is whole. */
		pthread_mutex_consistent(&l->lock);
		return true;
	}
	if (rc != 0) {
		log_errno(LOG_WARNING, rc, "connection limits: lock");
		return false;
	}
	return true;
}

void limits_row_claim(struct limits *l, unsigned row)
{
	struct row *r;
	bool locked;

	if (!l || row >= l->nrows)
		return;
	r = row_at(l, row);
	locked = limits_lock(l);
	memset(r->entries, 0, l->capacity * sizeof(struct entry));
	r->total = 0;
	atomic_store(&r->dead, 0);
	/* The master hands out the lowest free row: this stays near the
	 * number of workers however many rows there are. */
	if (row >= l->rows_used)
		l->rows_used = row + 1;
	if (locked)
		pthread_mutex_unlock(&l->lock);
}

void limits_key_of(const struct peer *p, struct source_key *k)
{
	memset(k, 0, sizeof(*k));
	if (p->family == AF_UNIX) {
		k->kind = p->has_cred ? KEY_UID : KEY_UNKNOWN;
		memcpy(k->id, &p->uid, sizeof(p->uid));
	} else {
		k->kind = KEY_IP;
		memcpy(k->id, p->addr, sizeof(k->id));
	}
}

static enum limits_verdict check_and_count(struct limits *l, unsigned row,
					   const struct source_key *k)
{
	unsigned total = 0, from_source = 0;
	struct row *own = row_at(l, row);
	long slot = -1;

	for (unsigned i = 0; i < l->rows_used; i++) {
		struct row *r = row_at(l, i);
		long s;

		if (atomic_load(&r->dead))
			continue;
		total += r->total;
		if (!l->capacity)
			continue;
		s = find_slot(l, r, k);
		if (r == own)
			slot = s;
		if (s >= 0)
			from_source += r->entries[s].count;
	}
	if (l->max_total && total >= l->max_total)
		return LIMITS_TOTAL;
	if (l->max_per_source && from_source >= l->max_per_source)
		return LIMITS_SOURCE;
	if (l->capacity) {
		if (slot < 0)
			return LIMITS_UNAVAILABLE;
		own->entries[slot].key = *k;
		own->entries[slot].count++;
	}
	own->total++;
	return LIMITS_OK;
}

enum limits_verdict limits_take(struct limits *l, unsigned row, const struct source_key *k)
{
	enum limits_verdict v;

	if (row >= l->nrows || !limits_lock(l))
		return LIMITS_UNAVAILABLE;
	v = check_and_count(l, row, k);
	pthread_mutex_unlock(&l->lock);
	return v;
}

void limits_release(struct limits *l, unsigned row, const struct source_key *k)
{
	struct row *r = row_at(l, row);
	bool locked = limits_lock(l);
	long slot;

	/* Without the lock a reader may see the table mid-change; a count
	 * that is never released would be worse. */
	if (r->total)
		r->total--;
	if (l->capacity) {
		slot = find_slot(l, r, k);
		if (slot >= 0 && r->entries[slot].count && --r->entries[slot].count == 0)
			remove_slot(l, r, (uint32_t)slot);
	}
	if (locked)
		pthread_mutex_unlock(&l->lock);
}
