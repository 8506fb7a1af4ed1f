/* SPDX-License-Identifier: ISC */
/* handover-forger.c - execs preforkd with a handover that is not one an upgrade would write.
 *
 * handover-forger MODE PORT PROGRAM ARGS...: sets PREFORKD_HANDOVER and
 * execs PROGRAM in place (same pid, as an upgrade does), MODE being:
 *   truncated  a manifest of format 1 with a listener on 127.0.0.1:PORT
 *              (bound here, without SO_REUSEPORT) and no "end" line;
 *   format     one of format 99;
 *   missing    a descriptor number that is not open;
 *   stray      no handover at all (an ordinary start).
 * Every mode also hands on a pipe no manifest names: a handover must not
 * keep it, nor may an upgrade hand it on. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static int listener(unsigned port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 64) < 0) {
		perror("handover-forger: listener");
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	char text[512], value[32], layout[128] = "", cmd[600];
	int memfd, stray[2];
	unsigned port;
	FILE *p;

	if (argc < 4) {
		fprintf(stderr, "usage: handover-forger truncated|format|missing|stray PORT PROGRAM ARGS...\n");
		return 2;
	}
	port = (unsigned)strtoul(argv[2], NULL, 10);
	/* The layout the daemon expects, from the daemon itself. */
	snprintf(cmd, sizeof(cmd), "'%s' -L", argv[3]);
	p = popen(cmd, "r");
	if (!p || !fgets(text, sizeof(text), p) || sscanf(text, "handover-layout %127s", layout) != 1) {
		fprintf(stderr, "handover-forger: %s -L said no layout\n", argv[3]);
		return 1;
	}
	pclose(p);
	if (pipe(stray) < 0)
		return 1;
	memfd = memfd_create("forged-handover", 0);
	if (memfd < 0)
		return 1;
	if (strcmp(argv[1], "truncated") == 0) {
		int fd = listener(port);

		snprintf(text, sizeof(text),
			 "preforkd-handover 1\nlayout %s\nfrom =forged %ld\n"
			 "listener %d 64 0 0 0 0 0 =127.0.0.1:%u\n"
			 "master 7 3 3 0 1 0 1 1 1 1 0\n", layout, (long)getpid(), fd, port);
	} else if (strcmp(argv[1], "format") == 0) {
		snprintf(text, sizeof(text), "preforkd-handover 99\nfrom =future %ld\nend\n",
			 (long)getpid());
	} else if (strcmp(argv[1], "stray") == 0) {
		close(memfd);
		execv(argv[3], argv + 3);
		perror("handover-forger: execv");
		return 127;
	} else if (strcmp(argv[1], "missing") == 0) {
		close(memfd);
		memfd = 999;
		text[0] = '\0';
	} else {
		fprintf(stderr, "handover-forger: unknown mode %s\n", argv[1]);
		return 2;
	}
	if (memfd != 999 && (write(memfd, text, strlen(text)) != (ssize_t)strlen(text) ||
			     lseek(memfd, 0, SEEK_SET) < 0))
		return 1;
	snprintf(value, sizeof(value), "%d", memfd);
	setenv("PREFORKD_HANDOVER", value, 1);
	execv(argv[3], argv + 3);
	perror("handover-forger: execv");
	return 127;
}
