/* SPDX-License-Identifier: ISC */
/* main.c - the command line: options, config check mode, and the hand-off to the master. */
#include "config.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "common/log.h"
#include "common/proctitle.h"
#include "common/version.h"
#include "master/handover.h"
#include "master/master.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/preforkd/preforkd.conf"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: preforkd [-c FILE] [-t] [-L] [-v] [-V] [-h]\n"
		"Preforking server daemon for TCP and Unix-domain sockets; runs in the foreground.\n"
		"\n"
		"  -c FILE  configuration file (default %s)\n"
		"  -t       check the configuration and exit (binds nothing)\n"
		"  -L       print the handover layout an upgrade needs to match (then -t, or exit)\n"
		"  -v       log at debug level, whatever log-level says\n"
		"  -V       print the version and exit\n"
		"  -h       print this help and exit\n"
		"\n"
		"Exit status: 0 stopped cleanly, 1 runtime failure, 2 usage error, 78 configuration error.\n",
		DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	int rc;
	bool check_only = false, verbose = false, layout = false;
	char err[CONF_ERR_MAX];
	struct config *conf;
	int opt;

#ifdef PREFORKD_VERSION_TAG
	preforkd_version = PACKAGE_VERSION PREFORKD_VERSION_TAG;	/* a test build, told apart */
#endif
	log_init();
	while ((opt = getopt(argc, argv, "c:tLvVh")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'L':
			layout = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'V':
			printf("preforkd %s\n", preforkd_version);
			return EXIT_OK;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "preforkd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}

	/* An upgrading master asks the new binary this with -t: what its workers
	 * write in shared memory must be what the new image reads. */
	if (layout) {
		printf("handover-layout %s\n", handover_layout());
		fflush(stdout);
		if (!check_only)
			return EXIT_OK;
	}
	conf = conf_load(path, err, sizeof(err));
	if (!conf) {
		log_error("%s", err);
		log_drain(LOG_EXIT_DRAIN_MS);
		if (check_only)
			fprintf(stderr, "configuration has errors\n");
		return EXIT_CONFIG;
	}
	if (check_only) {
		printf("%s: configuration OK\n", path);
		conf_free(conf);
		return EXIT_OK;
	}
	log_set_level(verbose ? LOG_DEBUG : conf->log_level);
	log_notice("preforkd %s starting with %s", preforkd_version, path);
	/* Last: the title takes the memory argv points into. */
	path = strdup(path);
	if (!path) {
		log_error("out of memory");
		conf_free(conf);
		return EXIT_RUNTIME;
	}
	proctitle_init(argc, argv);
	rc = master_run(conf, &(struct master_opts){ .conf_path = path, .verbose = verbose });
	free((char *)path);
	return rc;
}
