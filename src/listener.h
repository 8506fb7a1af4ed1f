/* listener.h - listening sockets: bound exclusively, options by family, unix files cleaned up. */
#ifndef PREFORKD_LISTENER_H
#define PREFORKD_LISTENER_H

#include <stdbool.h>
#include <sys/types.h>

#include "address.h"
#include "evsource.h"

struct service;

struct listener {
	struct ev_source src;	/* first: a worker's epoll data points here */
	struct address addr;
	int fd;
	/* The unix socket file we created, so we remove that one and no other. */
	bool owns_file;
	dev_t file_dev;
	ino_t file_ino;
};

/* Binds and listens on addr with the service's backlog and unix file options.
 * Refuses, with a logged reason naming the address, when anything else is
 * bound there. Returns 0, or -1 with l->fd == -1. */
int listener_open(struct listener *l, const struct address *addr, const struct service *svc);
/* Closes the socket; with remove_file, unlinks the unix socket file if it is still ours. */
void listener_close(struct listener *l, bool remove_file);

#endif
