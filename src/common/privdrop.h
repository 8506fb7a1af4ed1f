/* privdrop.h - giving up root in a worker after the master has bound everything. */
#ifndef PREFORKD_PRIVDROP_H
#define PREFORKD_PRIVDROP_H

struct identity;

/* Switches to id's user and group when running as root. Returns 0, or -1
 * after logging; a worker that cannot drop privileges must not serve. */
int privdrop_apply(const struct identity *id);

#endif
