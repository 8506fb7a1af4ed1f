/* SPDX-License-Identifier: ISC */
/* spawnfloor.c - the ceiling for a server that runs a program per connection.
 *
 *   spawnfloor [-p PARALLEL] [-d SECONDS] PROGRAM [ARG...]
 *
 * Runs PROGRAM over and over with stdin and stdout on /dev/null, keeping
 * PARALLEL of them running at once, for SECONDS, with vfork+execve as
 * preforkd's exec handler does, and nothing else: no socket, no client, no
 * supervision. No server that runs PROGRAM once per connection can go faster
 * on this machine, so the W3-exec rates of run.sh are read against it. Prints
 * one line of key=value results, in loadgen's form, with the CPU time of
 * itself and its children per run (srv_cpu_us_op: the "server" of this row). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PARALLEL 1000
#define MAX_SECONDS 600

extern char **environ;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t cpu_us(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
	       (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
}

static pid_t start(char **argv, int null_fd)
{
	pid_t pid = vfork();

	if (pid == 0) {
		if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0)
			_exit(126);
		execve(argv[0], argv, environ);
		_exit(127);
	}
	return pid;
}

int main(int argc, char **argv)
{
	unsigned parallel = 32, seconds = 5, running = 0;
	uint64_t ops = 0, failed = 0, began, deadline, cpu;
	int opt, null_fd;

	while ((opt = getopt(argc, argv, "p:d:")) != -1) {
		if (opt == 'p')
			parallel = (unsigned)atoi(optarg);
		else if (opt == 'd')
			seconds = (unsigned)atoi(optarg);
		else
			return 2;
	}
	if (optind >= argc || parallel < 1 || parallel > MAX_PARALLEL || seconds < 1 ||
	    seconds > MAX_SECONDS || argv[optind][0] != '/') {
		fprintf(stderr, "usage: spawnfloor [-p 1..%d] [-d 1..%d] /PROGRAM [ARG...]\n",
			MAX_PARALLEL, MAX_SECONDS);
		return 2;
	}
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0) {
		perror("spawnfloor: /dev/null");
		return 1;
	}
	began = now_ms();
	deadline = began + seconds * 1000ULL;
	for (;;) {
		int status;
		pid_t pid;

		while (running < parallel && now_ms() < deadline) {
			if (start(argv + optind, null_fd) < 0) {
				perror("spawnfloor: vfork");
				break;
			}
			running++;
		}
		if (running == 0)
			break;
		pid = waitpid(-1, &status, 0);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0) {
			perror("spawnfloor: waitpid");
			return 1;
		}
		running--;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			ops++;
		else
			failed++;
	}
	cpu = cpu_us(RUSAGE_SELF) + cpu_us(RUSAGE_CHILDREN);
	printf("mode=spawn parallel=%u seconds=%u ops=%llu rate=%.0f errors=%llu srv_cpu_us_op=%.1f\n",
	       parallel, seconds, (unsigned long long)ops,
	       (double)ops * 1000.0 / (double)(now_ms() - began), (unsigned long long)failed,
	       ops ? (double)cpu / (double)ops : 0.0);
	return 0;
}
