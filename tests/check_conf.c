/* SPDX-License-Identifier: ISC */
/* check_conf.c - the config file: good configs, each refusal with its file:line, -t mode. */
#include "config.h"

#include <check.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

#include "common/array.h"
#include "conf/conf.h"
#include "handlers/handler.h"
#include "common/log.h"
#include "testlib.h"

static char dir[128];
static char path[192];

static void setup(void)
{
	tl_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/test.conf", dir);
}

static void teardown(void)
{
	tl_rmtree(dir);
}

static struct config *load(const char *text, char *err, size_t errlen)
{
	tl_write_file(path, text);
	return conf_load(path, err, errlen);
}

/* The config must be refused with exactly "PATH:LINE: ..." containing what. */
static void assert_refused(const char *text, int line, const char *what)
{
	char err[CONF_ERR_MAX], prefix[256];
	struct config *conf = load(text, err, sizeof(err));

	ck_assert_msg(conf == NULL, "accepted:\n%s", text);
	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", path);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
		      "error \"%s\" does not start with \"%s\"", err, prefix);
	ck_assert_msg(strstr(err, what) != NULL, "error \"%s\" lacks \"%s\"", err, what);
}

#define EXEC_SVC(lines) "service e {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"exec\"\n" \
	lines "}\n"
#define ECHO_SVC(addr) "service echo {\n  listen = { \"" addr "\" }\n  handler = \"echo\"\n}\n"

START_TEST(good_config)
{
	char err[CONF_ERR_MAX];
	struct config *conf = load(
		"user = \"nobody\"\n"
		"log-level = \"debug\"\n"
		"shutdown-timeout = 1500ms\n"
		"pidfile = \"/run/x.pid\"\n"
		"service echo {\n"
		"    listen  = { \"127.0.0.1:7007\", \"[::1]:7007\", \"unix:/run/preforkd/echo.sock\" }\n"
		"    handler = \"echo\"\n"
		"    workers = 3\n"
		"    backlog = 128\n"
		"    max-connections = 10\n"
		"    idle-timeout = 2m\n"
		"    socket-mode = 0660\n"
		"    socket-group = \"root\"\n"
		"}\n"
		"service other {\n"
		"    listen = { \"*:7008\" }\n"
		"    handler = \"echo\"\n"
		"}\n", err, sizeof(err));
	const struct service *echo, *other;

	ck_assert_msg(conf != NULL, "%s", err);
	ck_assert_uint_eq(conf->nservices, 2);
	ck_assert_str_eq(conf->run_as.user, "nobody");
	ck_assert_uint_ne(conf->run_as.uid, 0);
	ck_assert_str_eq(conf->pidfile, "/run/x.pid");
	ck_assert_int_eq(conf->log_level, LOG_DEBUG);
	ck_assert_uint_eq(conf->shutdown_timeout_ms, 1500);
	echo = conf_find_service(conf, "echo");
	ck_assert_ptr_nonnull(echo);
	ck_assert_ptr_eq(echo->handler, handler_find("echo"));
	ck_assert_uint_eq(echo->workers, 3);
	ck_assert_int_eq(echo->backlog, 128);
	ck_assert_uint_eq(echo->max_connections, 10);
	ck_assert_uint_eq(echo->idle_timeout_ms, 120000);
	ck_assert_int_eq(echo->socket_mode, 0660);
	ck_assert_uint_eq(echo->socket_uid, (uid_t)-1);
	ck_assert_uint_eq(echo->socket_gid, 0);
	ck_assert_uint_eq(echo->nlisten, 3);
	ck_assert_str_eq(echo->listen[0].text, "127.0.0.1:7007");
	ck_assert_str_eq(echo->listen[1].text, "[::1]:7007");
	ck_assert_str_eq(echo->listen[2].text, "unix:/run/preforkd/echo.sock");
	/* Defaults. */
	other = conf_find_service(conf, "other");
	ck_assert_uint_eq(other->workers, 1);
	ck_assert_int_eq(other->backlog, 511);
	ck_assert_uint_eq(other->max_connections, 1024);
	ck_assert_uint_eq(other->idle_timeout_ms, 60000);
	ck_assert_int_eq(other->socket_mode, 0666);
	conf_free(conf);

	conf = load(ECHO_SVC("127.0.0.1:1"), err, sizeof(err));
	ck_assert_msg(conf != NULL, "%s", err);
	ck_assert_ptr_null(conf->run_as.user);
	ck_assert_ptr_null(conf->pidfile);
	ck_assert_int_eq(conf->log_level, LOG_INFO);
	ck_assert_uint_eq(conf->shutdown_timeout_ms, 30000);
	conf_free(conf);
}
END_TEST

START_TEST(bundled_config_is_valid)
{
	char err[CONF_ERR_MAX];
	struct config *conf = conf_load(SRCDIR "/conf/preforkd.conf", err, sizeof(err));

	ck_assert_msg(conf != NULL, "%s", err);
	ck_assert_ptr_nonnull(conf_find_service(conf, "echo"));
	ck_assert_uint_eq(conf_find_service(conf, "echo")->nallow, 2);
	ck_assert_str_eq(conf_find_service(conf, "echo")->busy_message, "busy, try again later\r\n");
	conf_free(conf);
}
END_TEST

/* libconfuse 3.3 counts a '#' comment line as three lines and breaks on a
 * comment inside a list; both must be right here. */
START_TEST(line_numbers_after_comments)
{
	assert_refused("# one\n# two\n// three\nbogus = 1\n", 4, "no such option 'bogus'");
	assert_refused("/* a\n   b\n */\nbogus = 1\n", 4, "no such option 'bogus'");
	assert_refused("log-level = \"info\" # trailing\n\n\nbogus = 1\n", 4, "bogus");
	assert_refused("service echo {\n"
		       "  listen = { \"127.0.0.1:1\",  # first\n"
		       "             # a comment line inside the list\n"
		       "             \"127.0.0.1:x\" }\n"
		       "}\n", 4, "port must be");
	/* '#' inside a string is not a comment; "//" inside a path is not either
	 * (the path is then normalised, "//" to "/"; an abstract name is kept
	 * byte for byte). */
	char err[CONF_ERR_MAX];
	struct config *conf = load("service echo {\n  listen = { \"unix:/tmp/a#b//c\",\n"
				   "    \"unix:@/tmp/a#b//c\" }\n"
				   "  handler = \"echo\"\n}\n", err, sizeof(err));

	ck_assert_msg(conf != NULL, "%s", err);
	ck_assert_str_eq(conf->services[0].listen[0].text, "unix:/tmp/a#b/c");
	ck_assert_str_eq(conf->services[0].listen[1].text, "unix:@/tmp/a#b//c");
	conf_free(conf);
}
END_TEST

START_TEST(strip_comments_keeps_newlines)
{
	char *out = conf_strip_comments("a # x\n/* y\nz */b // w\n\"#q\" 'c#'\n");

	ck_assert_str_eq(out, "a    \n    \n    b     \n\"#q\" 'c#'\n");
	free(out);
}
END_TEST

/* libconfuse expands ${VAR} from the environment, even in double quotes:
 * -t in a shell and the daemon under systemd would read different configs. */
START_TEST(environment_is_not_expanded)
{
	static const char *const bad[] = {
		"  workers = ${PREFORKD_TEST_WORKERS}\n",
		"  workers = \"${PREFORKD_TEST_WORKERS}\"\n",
		"  busy-message = \"x${PREFORKD_TEST_UNSET:-y}z\"\n",
		"  ${PREFORKD_TEST_NAME} = 3\n",
		"  allow = { \"10.0.0.0/8\", ${PREFORKD_TEST_RANGE} }\n",
	};
	char text[512], err[CONF_ERR_MAX];
	struct config *conf;

	setenv("PREFORKD_TEST_WORKERS", "3", 1);
	setenv("PREFORKD_TEST_NAME", "workers", 1);
	setenv("PREFORKD_TEST_RANGE", "10.1.0.0/16", 1);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(text, sizeof(text), "service a {\n  listen = { \"127.0.0.1:9\" }\n"
			 "  handler = \"echo\"\n%s}\n", bad[i]);
		assert_refused(text, 4, "\"${\" outside single quotes: preforkd does not expand "
			       "environment variables");
	}
	assert_refused("service \"${PREFORKD_TEST_NAME}\" {\n  listen = { \"127.0.0.1:9\" }\n}\n",
		       1, "for a literal ${ write '${...}' or \"\\${...}\"");
	/* The two literal forms, "$NAME" (never expanded), and ${ in a comment. */
	conf = load(EXEC_SVC("  exec = { \"/bin/cat\" }\n"
			     "  env = { 'A=${PREFORKD_TEST_WORKERS}', \"B=\\${HOME}\", \"C=$HOME\" }\n"
			     "  # ${PREFORKD_TEST_WORKERS}\n"), err, sizeof(err));
	ck_assert_msg(conf != NULL, "%s", err);
	ck_assert_str_eq(conf->services[0].exec_env[0], "A=${PREFORKD_TEST_WORKERS}");
	ck_assert_str_eq(conf->services[0].exec_env[1], "B=${HOME}");
	ck_assert_str_eq(conf->services[0].exec_env[2], "C=$HOME");
	conf_free(conf);
}
END_TEST

/* Where libconfuse fails without calling the error function, or would
 * silently cut a string, the error still names the line. */
START_TEST(syntax_errors_name_the_line)
{
	char err[CONF_ERR_MAX];
	FILE *f;

	assert_refused("log-level = \"info\"\n\"\" = 1\n" ECHO_SVC("127.0.0.1:1"), 2,
		       "an option name is empty");
	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" }\n\n  '' = 1\n}\n", 4,
		       "an option name is empty");
	assert_refused("log-level = \"info\"\n\"\\0\" = 1\n" ECHO_SVC("127.0.0.1:1"), 2,
		       "a \\0 or \\x00 escape in a quoted string");
	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"echo\\0x\"\n}\n",
		       3, "a value cannot hold a NUL byte");
	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"echo\"\n"
		       "  busy-message = \"\\x00\"\n}\n", 4, "a \\0 or \\x00 escape");
	unsetenv("PREFORKD_TEST_UNSET");
	assert_refused("\n${PREFORKD_TEST_UNSET} = 1\n" ECHO_SVC("127.0.0.1:1"), 2,
		       "does not expand environment variables");
	assert_refused("service \"\" {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"echo\"\n}\n",
		       4, "a service name is empty");
	/* A backslash-newline inside quotes still counts as a line. */
	assert_refused("log-level = \"in\\\nfo\"\n\"\" = 1\n" ECHO_SVC("127.0.0.1:1"), 3,
		       "an option name is empty");
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fwrite("log-level = \"info\"\n\n\"a\0\"\n", 1, 25, f);
	fclose(f);
	ck_assert_ptr_null(conf_load(path, err, sizeof(err)));
	ck_assert_msg(strstr(err, ":3: contains a NUL byte") != NULL, "%s", err);
}
END_TEST

/* libconfuse's lexer drops a '+' that is not "+=", and any '*', outside quotes. */
START_TEST(signs_and_stars_are_refused)
{
	static const char *const bad[] = { "workers = +5", "workers = ++5", "workers = 5+" };
	char text[512];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(text, sizeof(text), "service a {\n  listen = { \"unix:/tmp/x.sock\" }\n"
			 "  handler = \"echo\"\n  %s\n}\n", bad[i]);
		assert_refused(text, 4, "a '+' that is not '+=': libconfuse would ignore it");
	}
	assert_refused("service a {\n  listen = { *:80 }\n  handler = \"echo\"\n}\n", 2,
		       "a '*' outside quotes: libconfuse would ignore it; quote the value");
}
END_TEST

/* A control byte from the file in a message would split its line: the
 * message keeps the value as it is (it names the line), and whoever shows
 * it escapes it, the log like systemd's STATUS=. */
START_TEST(values_in_messages_are_escaped)
{
	char *out;

	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"ec\\nho\\033\"\n}\n",
		       3, "unknown handler \"ec\nho\033\"");
	tl_write_file(path, "service a {\n  listen = { \"127.0.0.1:9\" }\n"
		      "  handler = \"ec\\nho\"\n}\n");
	ck_assert_int_eq(tl_run_preforkd(&out, "-t", "-c", path, NULL), 78);
	ck_assert_msg(strstr(out, ":3: option 'handler': unknown handler \"ec\\x0aho\" (known: "),
		      "%s", out);
	ck_assert_msg(strchr(strchr(out, '\n') + 1, '\n') == strrchr(out, '\n'),
		      "more than two lines:\n%s", out);
	free(out);
}
END_TEST

START_TEST(refusals)
{
	assert_refused("bogus = 1\n" ECHO_SVC("127.0.0.1:1"), 1, "no such option 'bogus'");
	assert_refused(ECHO_SVC("127.0.0.1:1") "\nservice echo {\n listen = {\"127.0.0.1:2\"}\n"
		       " handler = \"echo\"\n}\n", 6, "duplicate title 'echo'");
	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"echo\"\n}\n"
		       "service b {\n  handler = \"echo\"\n  listen = { \"127.0.0.1:9\" }\n}\n", 7,
		       "127.0.0.1:9 is already used by service 'a' (127.0.0.1:9 at line 2)");
	assert_refused("service a {\n  listen = { \"*:9\" }\n  handler = \"echo\"\n}\n"
		       "service b {\n  listen = { \"[::1]:8\",\n \"127.0.0.1:9\" }\n  handler = \"echo\"\n}\n",
		       7, "already used by service 'a' (*:9 at line 2)");
	assert_refused("service a {\n  listen = { \"unix:/x\",\n  \"unix:/x\" }\n  handler = \"echo\"\n}\n",
		       3, "listed twice in service 'a'");
	assert_refused("service a {\n  listen = { \"unix:/tmp/x/a.sock\" }\n  handler = \"echo\"\n}\n"
		       "service b {\n  listen = { \"unix:/tmp/x//./a.sock\" }\n  handler = \"echo\"\n}\n",
		       6, "listen address unix:/tmp/x/a.sock is already used by service 'a'");
	assert_refused(ECHO_SVC("[::ffff:127.0.0.1]:7"), 2, "write it as 127.0.0.1:7");
	assert_refused(ECHO_SVC("127.0.0.1:99999"), 2, "bad listen address");
	assert_refused(ECHO_SVC("example.com:80"), 2, "host names are not resolved");
	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"nope\"\n}\n", 3,
		       "unknown handler \"nope\" (known: echo, exec, app, proxy)");
	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" }\n}\n", 3, "has no 'handler'");
	assert_refused("service a {\n  handler = \"echo\"\n}\n", 3, "has no 'listen' address");
	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" }\n  listen = { \"127.0.0.1:8\" }\n"
		       "  handler = \"echo\"\n}\n", 5, "'listen' is given more than once (first at line 2)");
	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"echo\"\n"
		       "  handler = \"echo\"\n}\n", 4, "option 'handler' is given twice (first at line 3)");
	assert_refused("log-level = \"info\"\nlog-level = \"debug\"\n" ECHO_SVC("127.0.0.1:1"), 2,
		       "given twice");
	assert_refused("log-level = \"loud\"\n" ECHO_SVC("127.0.0.1:1"), 1, "not one of error");
	assert_refused("pidfile = \"run/x.pid\"\n" ECHO_SVC("127.0.0.1:1"), 1, "not an absolute path");
	assert_refused("user = \"no-such-user-here\"\n" ECHO_SVC("127.0.0.1:1"), 1, "no such user");
	assert_refused("group = \"no-such-group-here\"\n" ECHO_SVC("127.0.0.1:1"), 1, "no such group");
	assert_refused("user = \"\"\n" ECHO_SVC("127.0.0.1:1"), 1, "is empty");
	assert_refused("log-level = \"info\"\n", 0, "no service is defined");
	assert_refused("service {\n}\n", 1, "missing title");
	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" \n", 3, "premature end of file");
}
END_TEST

START_TEST(numbers_are_decimal_and_ranged)
{
	static const struct { const char *line; const char *what; } bad[] = {
		{ "workers = 0", "0 is out of range (1 to 1024)" },
		{ "workers = 1025", "out of range (1 to 1024)" },
		{ "workers = 010", "\"010\" is not a decimal number" },	/* not octal 8 */
		{ "workers = 0x10", "not a decimal number" },
		{ "workers = -1", "not a decimal number" },
		{ "workers = 2.5", "not a decimal number" },
		{ "workers = 99999999999999999999999", "out of range" },
		{ "backlog = 70000", "out of range (1 to 65535)" },
		{ "max-connections = 0", "out of range" },
		{ "idle-timeout = 5x", "not a duration" },
		{ "idle-timeout = 25h", "out of range (0 (never) to 24h)" },
		{ "idle-timeout = 030s", "\"030s\" is not a duration" },
		{ "socket-mode = 0999", "not an octal mode" },
		{ "socket-mode = 17777", "out of range" },
	};
	char text[512], err[CONF_ERR_MAX];
	struct config *conf;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(text, sizeof(text), "service a {\n  listen = { \"unix:/tmp/x.sock\" }\n"
			 "  handler = \"echo\"\n  %s\n}\n", bad[i].line);
		assert_refused(text, 4, bad[i].what);
	}
	assert_refused("shutdown-timeout = 2h\n" ECHO_SVC("127.0.0.1:1"), 1, "out of range (0 to 1h)");

	/* Octal only where a mode is meant, and then even without the leading 0. */
	conf = load("service a {\n  listen = { \"unix:/tmp/x.sock\" }\n  handler = \"echo\"\n"
		    "  socket-mode = 660\n  workers = 10\n  idle-timeout = 0\n}\n", err, sizeof(err));
	ck_assert_msg(conf != NULL, "%s", err);
	ck_assert_int_eq(conf->services[0].socket_mode, 0660);
	ck_assert_uint_eq(conf->services[0].workers, 10);
	ck_assert_uint_eq(conf->services[0].idle_timeout_ms, 0);
	conf_free(conf);
}
END_TEST


/* The exec handler's options: the program must exist, each line named. */
START_TEST(exec_options)
{
	char err[CONF_ERR_MAX];
	struct config *conf;
	const struct service *svc;

	assert_refused(EXEC_SVC(""), 4, "handler \"exec\" needs 'exec = {");
	assert_refused(EXEC_SVC("  exec = { \"cat\" }\n"), 4, "\"cat\" is not an absolute path");
	assert_refused(EXEC_SVC("  exec = { \"/no/such/prog\" }\n"), 4,
		       "\"/no/such/prog\": No such file or directory");
	assert_refused(EXEC_SVC("  exec = { \"/etc/passwd\" }\n"), 4, "not an executable file");
	assert_refused(EXEC_SVC("  exec = { \"/bin/cat\" }\n  env = { \"1X=y\" }\n"), 5,
		       "\"1X=y\" is not NAME=value");
	assert_refused(EXEC_SVC("  exec = { \"/bin/cat\" }\n  env = { \"NOEQUALS\" }\n"), 5,
		       "not NAME=value");
	assert_refused(EXEC_SVC("  exec = { \"/bin/cat\" }\n  directory = \"/no/dir\"\n"), 5,
		       "\"/no/dir\" is not a directory");
	assert_refused(EXEC_SVC("  exec = { \"/bin/cat\" }\n  exec-stderr = \"file\"\n"), 5,
		       "is not \"log\" or \"null\"");
	assert_refused(EXEC_SVC("  exec = { \"/bin/cat\" }\n  exec-timeout = 25h\n"), 5,
		       "out of range");
	assert_refused(EXEC_SVC("  exec = { \"/bin/cat\" }\n  exec = { \"/bin/cat\" }\n"), 5,
		       "option 'exec' is given twice (first at line 4)");
	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"echo\"\n"
		       "  exec = { \"/bin/cat\" }\n}\n", 5,
		       "'exec' (line 4) applies to handlers \"exec\" and \"app\" only");

	conf = load(EXEC_SVC("  exec = { \"/bin/echo\", \"-n\", \"\" }\n"
			     "  env = { \"LANG=C\", \"PATH=/bin\" }\n  directory = \"/tmp\"\n"
			     "  exec-timeout = 2s\n  exec-stderr = \"null\"\n"), err, sizeof(err));
	ck_assert_msg(conf != NULL, "%s", err);
	svc = &conf->services[0];
	ck_assert_str_eq(svc->exec_argv[0], "/bin/echo");
	ck_assert_str_eq(svc->exec_argv[2], "");	/* empty arguments are arguments */
	ck_assert_ptr_null(svc->exec_argv[3]);
	ck_assert_str_eq(svc->exec_env[1], "PATH=/bin");
	ck_assert_ptr_null(svc->exec_env[2]);
	ck_assert_str_eq(svc->directory, "/tmp");
	ck_assert_uint_eq(svc->exec_timeout_ms, 2000);
	ck_assert_uint_eq(svc->exec_kill_grace_ms, 5000);
	ck_assert(svc->exec_stderr_null);
	conf_free(conf);
}
END_TEST

/* The helper would get both TCPREMOTEIP=6.6.6.6 and the real one. */
START_TEST(env_cannot_shadow_connection_variables)
{
	static const char *const reserved[] = {
		"PROTO=TCP", "TCPREMOTEIP=6.6.6.6", "TCPLOCALPORT=1", "TCPREMOTEHOST=x",
		"UDPLOCALIP=1", "UDPREMOTEPORT=2", "UNIXLOCALPATH=/x", "UNIXREMOTEEUID=0",
	};
	char text[512], err[CONF_ERR_MAX];
	struct config *conf;

	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
		snprintf(text, sizeof(text), EXEC_SVC("  exec = { \"/bin/cat\" }\n"
						      "  env = { \"A=1\",\n \"%s\" }\n"), reserved[i]);
		assert_refused(text, 6, "the exec handler sets");
	}
	assert_refused(EXEC_SVC("  exec = { \"/bin/cat\" }\n  env = { \"TCPREMOTEIP=6.6.6.6\" }\n"), 5,
		       "option 'env': \"TCPREMOTEIP=6.6.6.6\": the exec handler sets TCPREMOTEIP "
		       "itself for each connection");
	assert_refused(EXEC_SVC("  exec = { \"/bin/cat\" }\n  env = { \"A=1\", \"B=2\",\n"
				"    \"A=3\" }\n"), 6, "option 'env': \"A=3\": A is given twice "
		       "(first at line 5)");
	assert_refused(EXEC_SVC("  exec = { \"/bin/cat\" }\n  env = { \"A=1\" }\n  env += { \"A=2\" }\n"),
		       6, "A is given twice (first at line 5)");
	/* Names that only look alike, and the same name in two services, are fine. */
	conf = load("service e {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"exec\"\n"
		    "  exec = { \"/bin/cat\" }\n  env = { \"PROTOCOL=x\", \"TCPX=1\", \"A=1\", \"AB=2\" }\n}\n"
		    "service f {\n  listen = { \"127.0.0.1:10\" }\n  handler = \"exec\"\n"
		    "  exec = { \"/bin/cat\" }\n  env = { \"A=1\" }\n}\n", err, sizeof(err));
	ck_assert_msg(conf != NULL, "%s", err);
	ck_assert_str_eq(conf->services[0].exec_env[3], "AB=2");
	conf_free(conf);
}
END_TEST

/* A 0700 root-owned program passes as root and fails every connection as
 * nobody: it is checked as the service's user, once the whole file is read. */
START_TEST(exec_checked_as_service_user)
{
	char prog[256], closed[256], text[1024], want[512], err[CONF_ERR_MAX], *out;
	struct config *conf;

	if (geteuid() != 0) {
		fprintf(stderr, "exec_checked_as_service_user: skipped, needs root\n");
		return;
	}
	ck_assert_int_eq(chmod(dir, 0755), 0);
	snprintf(prog, sizeof(prog), "%s/prog", dir);
	snprintf(closed, sizeof(closed), "%s/closed", dir);
	tl_write_file(prog, "#!/bin/sh\nexec cat\n");
	ck_assert_int_eq(chmod(prog, 0700), 0);
	ck_assert_int_eq(mkdir(closed, 0700), 0);

	/* The global user comes after the service. */
	snprintf(text, sizeof(text), EXEC_SVC("  exec = { \"%s\" }\n") "user = \"nobody\"\n", prog);
	snprintf(want, sizeof(want), "option 'exec': \"%s\" is not executable by user nobody: "
		 "Permission denied", prog);
	assert_refused(text, 4, want);
	tl_write_file(path, text);
	ck_assert_int_eq(tl_run_preforkd(&out, "-t", "-c", path, NULL), 78);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	free(out);

	/* The service's own user, and its directory. */
	snprintf(text, sizeof(text), EXEC_SVC("  exec = { \"/bin/cat\" }\n  directory = \"%s\"\n"
					      "  user = \"nobody\"\n"), closed);
	snprintf(want, sizeof(want), "option 'directory': \"%s\" cannot be searched by user "
		 "nobody: Permission denied", closed);
	assert_refused(text, 5, want);

	/* Two services, one identity; the second is the one that fails. */
	snprintf(text, sizeof(text), "user = \"nobody\"\n"
		 "service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"exec\"\n"
		 "  exec = { \"/bin/cat\" }\n}\n"
		 "service b {\n  listen = { \"127.0.0.1:10\" }\n  handler = \"exec\"\n"
		 "  exec = { \"%s\" }\n}\n", prog);
	assert_refused(text, 10, "is not executable by user nobody");

	/* As root without a user, or once nobody may run it, it passes. */
	snprintf(text, sizeof(text), EXEC_SVC("  exec = { \"%s\" }\n  directory = \"%s\"\n"),
		 prog, closed);
	conf = load(text, err, sizeof(err));
	ck_assert_msg(conf != NULL, "%s", err);
	conf_free(conf);
	ck_assert_int_eq(chmod(prog, 0755), 0);
	snprintf(text, sizeof(text), EXEC_SVC("  exec = { \"%s\" }\n  user = \"nobody\"\n"), prog);
	conf = load(text, err, sizeof(err));
	ck_assert_msg(conf != NULL, "%s", err);
	conf_free(conf);
}
END_TEST

/* What the descriptor limit cannot hold: an explicit max-connections is
 * refused at its line; the default, and the master's needs, only warned
 * about (a worker pauses at EMFILE, a reload that cannot start fails). */
START_TEST(descriptor_limit_checked)
{
	struct rlimit rl = { 4096, 4096 };
	char err[CONF_ERR_MAX], *out;
	struct config *conf;

	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"echo\"\n"
		       "  max-connections = 5000\n}\n", 4,
		       "service 'a': max-connections 5000 needs up to 5057 descriptors per worker, "
		       "RLIMIT_NOFILE allows 4096 (raise LimitNOFILE=, or lower max-connections)");
	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"exec\"\n"
		       "  exec = { \"/bin/cat\" }\n  max-connections = 2100\n}\n", 5,
		       "max-connections 2100 needs up to 4257 descriptors per worker");
	conf = load("service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"echo\"\n"
		    "  max-connections = 4000\n}\n", err, sizeof(err));
	ck_assert_msg(conf, "%s", err);
	conf_free(conf);
	rl.rlim_cur = rl.rlim_max = 512;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	tl_write_file(path, "service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"echo\"\n"
		      "  workers = 300\n}\n");
	ck_assert_int_eq(tl_run_preforkd(&out, "-t", "-c", path, NULL), 0);
	ck_assert_msg(strstr(out, "service 'a': the default max-connections (1024) needs up to 1081 "
			     "descriptors per worker, RLIMIT_NOFILE allows 512: a worker pauses "
			     "accepting at about 455 connections"), "%s", out);
	ck_assert_msg(strstr(out, "the master needs up to 625 descriptors while a reload runs two "
			     "generations of these workers, RLIMIT_NOFILE allows 512"), "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "configuration OK"));
	free(out);
}
END_TEST

/* Each option's own rule, word for word: its range, the handler it
 * applies to, the listen address it needs, what its value must be. */
START_TEST(option_rules)
{
	static const struct { const char *listen, *handler, *lines; int line; const char *what; } rules[] = {
		{ "unix:/tmp/x.sock", "echo", "  backlog = 0\n", 4,
		  "option 'backlog': 0 is out of range (1 to 65535)" },
		{ "unix:/tmp/x.sock", "echo", "  max-connections = 1000001\n", 4,
		  "option 'max-connections': 1000001 is out of range (1 to 1000000)" },
		{ "unix:/tmp/x.sock", "echo", "  idle-timeout = 86401\n", 4,
		  "option 'idle-timeout': 86401 is out of range (0 (never) to 24h)" },
		{ "unix:/tmp/x.sock", "echo", "  socket-mode = 010000\n", 4,
		  "option 'socket-mode': \"010000\" is not an octal mode like 0660" },
		{ "unix:/tmp/x.sock", "echo", "  max-per-source = 1000001\n", 4,
		  "option 'max-per-source': 1000001 is out of range (0 (no limit) to 1000000)" },
		{ "unix:/tmp/x.sock", "echo", "  max-service-connections = 01\n", 4,
		  "option 'max-service-connections': \"01\" is not a decimal number (digits only, "
		  "no leading zero)" },
		{ "127.0.0.1:9", "exec", "  exec = { \"/bin/cat\" }\n  exec-timeout = 1441m\n", 5,
		  "option 'exec-timeout': 1441m is out of range (0 (none) to 24h)" },
		{ "127.0.0.1:9", "exec", "  exec = { \"/bin/cat\" }\n  exec-kill-grace = 61m\n", 5,
		  "option 'exec-kill-grace': 61m is out of range (0 to 1h)" },
		{ "127.0.0.1:9", "exec", "  exec = { \"/bin/cat\" }\n  exec-kill-grace = 1.5s\n", 5,
		  "option 'exec-kill-grace': \"1.5s\" is not a duration (seconds, or a number with ms, "
		  "s, m or h)" },
		{ "127.0.0.1:9", "exec", "  exec = { \"/bin/cat\" }\n  directory = \"tmp\"\n", 5,
		  "option 'directory': \"tmp\" is not an absolute path" },
		{ "127.0.0.1:9", "exec", "  exec = { \"/bin/cat\" }\n  exec-stderr = \"\"\n", 5,
		  "option 'exec-stderr' is empty" },
		{ "127.0.0.1:9", "exec", "  exec = { \"/bin/cat\" }\n  env = { \"A=1\" }\n"
		  "  env = { \"B=1\" }\n", 6, "option 'env' is given twice (first at line 5)" },
		{ "unix:/tmp/x.sock", "echo", "  socket-owner = \"no-such-user-x\"\n", 4,
		  "option 'socket-owner': no such user \"no-such-user-x\"" },
		{ "unix:/tmp/x.sock", "echo", "  socket-group = \"no-such-group-x\"\n", 4,
		  "option 'socket-group': no such group \"no-such-group-x\"" },
		{ "unix:/tmp/x.sock", "echo", "  group = \"no-such-group-x\"\n", 4,
		  "option 'group': no such group \"no-such-group-x\"" },
		{ "127.0.0.1:9", "echo", "  env = { \"A=1\" }\n", 5,
		  "service 'a': 'env' (line 4) applies to handlers \"exec\" and \"app\" only" },
		{ "127.0.0.1:9", "echo", "  directory = \"/\"\n", 5,
		  "service 'a': 'directory' (line 4) applies to handlers \"exec\" and \"app\" only" },
		{ "127.0.0.1:9", "echo", "  exec-timeout = 1\n", 5,
		  "service 'a': 'exec-timeout' (line 4) applies to handler \"exec\" only" },
		{ "127.0.0.1:9", "echo", "  exec-kill-grace = 1\n", 5,
		  "service 'a': 'exec-kill-grace' (line 4) applies to handler \"exec\" only" },
		{ "127.0.0.1:9", "echo", "  exec-stderr = \"null\"\n", 5,
		  "service 'a': 'exec-stderr' (line 4) applies to handlers \"exec\" and \"app\" only" },
		/* The handler's options are checked before the listen addresses'. */
		{ "127.0.0.1:9", "echo", "  socket-mode = 0600\n  exec-stderr = \"null\"\n", 6,
		  "service 'a': 'exec-stderr' (line 5) applies to handlers \"exec\" and \"app\" only" },
		{ "unix:@a", "echo", "  socket-group = \"root\"\n", 5,
		  "service 'a': 'socket-group' (line 4) needs a unix:/path listen address" },
		{ "udp:127.0.0.1:9", "echo", "  allow-groups = { \"root\" }\n", 5,
		  "service 'a': 'allow-groups' (line 4) needs a unix: listen address" },
		{ "unixgram:/tmp/x.sock", "echo", "  deny = { \"10.0.0.0/8\" }\n", 5,
		  "service 'a': 'deny' (line 4) needs an IPv4 or IPv6 listen address" },
		/* socket-* first, whatever the order in the file. */
		{ "127.0.0.1:9", "echo", "  allow-users = { \"root\" }\n  socket-group = \"root\"\n", 6,
		  "service 'a': 'socket-group' (line 5) needs a unix:/path listen address" },
	};
	char text[2048], busy[1026], err[CONF_ERR_MAX];
	struct config *conf;

	for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
		snprintf(text, sizeof(text), "service a {\n  listen = { \"%s\" }\n  handler = \"%s\"\n%s}\n",
			 rules[i].listen, rules[i].handler, rules[i].lines);
		assert_refused(text, rules[i].line, rules[i].what);
	}
	/* 1025 bytes are too many, 1024 fit. */
	for (size_t len = sizeof(busy) - 1; len + 2 >= sizeof(busy); len--) {
		memset(busy, 'x', len);
		busy[len] = '\0';
		snprintf(text, sizeof(text), "service a {\n  listen = { \"127.0.0.1:9\" }\n"
			 "  handler = \"echo\"\n  max-per-source = 1\n  busy-message = \"%s\"\n}\n", busy);
		if (len == 1025) {
			assert_refused(text, 5, "option 'busy-message' is longer than 1024 bytes");
		} else {
			conf = load(text, err, sizeof(err));
			ck_assert_msg(conf != NULL, "%s", err);
			ck_assert_uint_eq(strlen(conf->services[0].busy_message), 1024);
			conf_free(conf);
		}
	}
	assert_refused("shutdown-timeout = 1.5s\n" ECHO_SVC("127.0.0.1:1"), 1,
		       "option 'shutdown-timeout': \"1.5s\" is not a duration");
	assert_refused("pidfile = \"\"\n" ECHO_SVC("127.0.0.1:1"), 1, "option 'pidfile' is empty");
	assert_refused("pidfile = \"/a\"\npidfile = \"/a\"\n" ECHO_SVC("127.0.0.1:1"), 2,
		       "option 'pidfile' is given twice (first at line 1)");
	assert_refused("workers = 2\n" ECHO_SVC("127.0.0.1:1"), 1, "no such option 'workers'");
	assert_refused(ECHO_SVC("127.0.0.1:1") "pidfile = \"/a\"\nservice b {\n  pidfile = \"/a\"\n}\n",
		       7, "no such option 'pidfile'");
}
END_TEST

#define APP_SVC(lines) "service web {\n  listen = { \"127.0.0.1:9\", \"unix:/tmp/w.sock\" }\n" \
	"  handler = \"app\"\n  exec = { \"/bin/cat\" }\n" lines "}\n"

/* Handler "app": its options and their defaults, what only preforkd
 * accepting means refused by name, and the environment it sets itself. */
START_TEST(app_options)
{
	static const char *const accepting[] = {
		"max-connections = 5", "idle-timeout = 5s", "allow = { \"127.0.0.1\" }",
		"deny = { \"10.0.0.0/8\" }", "allow-users = { \"root\" }",
		"allow-groups = { \"root\" }", "max-per-source = 2",
		"max-service-connections = 9", "busy-message = \"x\"",
	};
	static const char *const reserved[] = {
		"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC",
		"WATCHDOG_PID", "EINHORN_FD_COUNT", "EINHORN_FD_0", "SERVER_STARTER_PORT",
		"PREFORKD_WORKER",
	};
	char err[CONF_ERR_MAX], text[1024], what[256];
	struct config *conf = load(APP_SVC(""), err, sizeof(err));
	const struct service *svc;

	ck_assert_msg(conf != NULL, "%s", err);
	svc = &conf->services[0];
	ck_assert(svc->handler->app);
	ck_assert(svc->app_ready_notify);
	ck_assert_uint_eq(svc->start_timeout_ms, 30000);
	ck_assert_int_eq(svc->stop_signal, SIGTERM);
	ck_assert_uint_eq(svc->stop_timeout_ms, 30000);
	ck_assert_uint_eq(svc->watchdog_ms, 0);
	ck_assert_str_eq(svc->exec_argv[0], "/bin/cat");
	conf_free(conf);
	conf = load(APP_SVC("  ready = \"started\"\n  start-timeout = 2s\n  stop-signal = \"QUIT\"\n"
			    "  stop-timeout = 500ms\n  watchdog = 3s\n  env = { \"HOME=/srv\" }\n"
			    "  exec-stderr = \"null\"\n  workers = 3\n"), err, sizeof(err));
	ck_assert_msg(conf != NULL, "%s", err);
	svc = &conf->services[0];
	ck_assert(!svc->app_ready_notify);
	ck_assert_uint_eq(svc->start_timeout_ms, 2000);
	ck_assert_int_eq(svc->stop_signal, SIGQUIT);
	ck_assert_uint_eq(svc->stop_timeout_ms, 500);
	ck_assert_uint_eq(svc->watchdog_ms, 3000);
	ck_assert(svc->exec_stderr_null);
	ck_assert_uint_eq(svc->workers, 3);
	conf_free(conf);

	assert_refused("service web {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"app\"\n}\n", 4,
		       "service 'web': handler \"app\" needs 'exec = { \"/path/to/program\", ... }'");
	for (size_t i = 0; i < ARRAY_SIZE(accepting); i++) {
		snprintf(text, sizeof(text), "service web {\n  listen = { \"127.0.0.1:9\", "
			 "\"unix:/tmp/w.sock\" }\n  handler = \"app\"\n  exec = { \"/bin/cat\" }\n"
			 "  %s\n}\n", accepting[i]);
		snprintf(what, sizeof(what), "service 'web': '%.*s' (line 5) does not apply to "
			 "handler \"app\": the program accepts its connections, not preforkd",
			 (int)strcspn(accepting[i], " "), accepting[i]);
		assert_refused(text, 6, what);
	}
	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
		snprintf(text, sizeof(text), "service web {\n  listen = { \"127.0.0.1:9\" }\n"
			 "  handler = \"app\"\n  exec = { \"/bin/cat\" }\n  env = { \"A=1\", \"%s=3\" }\n"
			 "}\n", reserved[i]);
		snprintf(what, sizeof(what), "service 'web': 'env' (line 5): %s is set by preforkd "
			 "for every app worker", reserved[i]);
		assert_refused(text, 6, what);
	}
	assert_refused(APP_SVC("  exec-timeout = 5s\n"), 6,
		       "service 'web': 'exec-timeout' (line 5) applies to handler \"exec\" only");
	assert_refused(ECHO_SVC("127.0.0.1:1") "service b {\n  listen = { \"127.0.0.1:2\" }\n"
		       "  handler = \"exec\"\n  exec = { \"/bin/cat\" }\n  ready = \"notify\"\n}\n", 10,
		       "service 'b': 'ready' (line 9) applies to handler \"app\" only");
	assert_refused(APP_SVC("  stop-signal = \"KILL\"\n"), 5, "option 'stop-signal'");
	assert_refused(APP_SVC("  start-timeout = 50ms\n"), 5, "option 'start-timeout'");
	assert_refused(APP_SVC("  ready = \"yes\"\n"), 5, "option 'ready'");
}
END_TEST

/* metrics-listen: stream addresses only, none of a service's, none twice. */
START_TEST(metrics_listen_addresses)
{
	char err[CONF_ERR_MAX];
	struct config *conf = load("metrics-listen = { \"127.0.0.1:9464\", \"unix:/tmp/m.sock\" }\n"
				   ECHO_SVC("127.0.0.1:1"), err, sizeof(err));

	ck_assert_msg(conf != NULL, "%s", err);
	ck_assert_uint_eq(conf->nmetrics_listen, 2);
	ck_assert_str_eq(conf->metrics_listen[1].text, "unix:/tmp/m.sock");
	conf_free(conf);
	assert_refused("metrics-listen = { \"udp:127.0.0.1:9464\" }\n" ECHO_SVC("127.0.0.1:1"), 1,
		       "option 'metrics-listen': udp:127.0.0.1:9464: metrics are served over a stream "
		       "socket");
	assert_refused("metrics-listen = { \"127.0.0.1:1\" }\n" ECHO_SVC("127.0.0.1:1"), 1,
		       "metrics-listen 127.0.0.1:1 is already used by service 'echo' (127.0.0.1:1)");
	assert_refused("metrics-listen = { \"*:9\", \"127.0.0.1:9\" }\n" ECHO_SVC("127.0.0.1:1"), 1,
		       "metrics-listen 127.0.0.1:9 is listed twice");
	assert_refused("metrics-listen = { \"nowhere\" }\n" ECHO_SVC("127.0.0.1:1"), 1,
		       "option 'metrics-listen': bad address");
}
END_TEST

START_TEST(unix_options_need_unix_listener)
{
	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"echo\"\n"
		       "  socket-mode = 0600\n}\n", 5, "'socket-mode' (line 4) needs a unix:/path");
	assert_refused("service a {\n  listen = { \"unix:@abstract\" }\n  handler = \"echo\"\n"
		       "  socket-owner = \"root\"\n}\n", 5, "'socket-owner' (line 4) needs a unix:/path");
}
END_TEST

#define ACCESS_SVC(listen, extra) \
	"service a {\n  listen = { " listen " }\n  handler = \"echo\"\n" extra "}\n"

START_TEST(access_options)
{
	char err[CONF_ERR_MAX];
	struct config *conf;
	const struct service *svc;

	assert_refused(ACCESS_SVC("\"127.0.0.1:9\"", "  allow = { \"10.0.0.0/8\", \"10.1.2.3/8\" }\n"),
		       4, "option 'allow': \"10.1.2.3/8\" has bits set past its /8 prefix");
	assert_refused(ACCESS_SVC("\"127.0.0.1:9\"", "  deny = { \"1.2.3.4/33\" }\n"), 4,
		       "the prefix length must be 0 to 32");
	assert_refused(ACCESS_SVC("\"127.0.0.1:9\"", "  deny = { \"::1/129\" }\n"), 4,
		       "the prefix length must be 0 to 128");
	assert_refused(ACCESS_SVC("\"127.0.0.1:9\"", "  deny = { \"10.0.0.0/08\" }\n"), 4,
		       "the prefix length");
	assert_refused(ACCESS_SVC("\"*:9\"", "  allow = { \"::ffff:10.0.0.0/104\" }\n"), 4,
		       "option 'allow': \"::ffff:10.0.0.0/104\" is an IPv4-mapped IPv6 range, which "
		       "no client matches (IPv4 clients are matched as IPv4); write it as 10.0.0.0/8");
	assert_refused(ACCESS_SVC("\"*:9\"", "  deny = { \"::ffff:192.0.2.1\" }\n"), 4,
		       "write it as 192.0.2.1/32");
	assert_refused(ACCESS_SVC("\"127.0.0.1:9\"", "  allow = { \"localhost\" }\n"), 4,
		       "\"localhost\" is not an IPv4 or IPv6 address");
	assert_refused(ACCESS_SVC("\"127.0.0.1:9\"", "  allow = { \"/8\" }\n"), 4,
		       "is not an address range");
	assert_refused(ACCESS_SVC("\"unix:@a\"", "  allow = { \"10.0.0.0/8\" }\n"), 5,
		       "'allow' (line 4) needs an IPv4 or IPv6 listen address");
	assert_refused(ACCESS_SVC("\"127.0.0.1:9\"", "  allow-users = { \"root\" }\n"), 5,
		       "'allow-users' (line 4) needs a unix: listen address");
	assert_refused(ACCESS_SVC("\"unix:@a\"", "  allow-users = { \"root\", \"no-such-user-x\" }\n"),
		       4, "option 'allow-users': no such user \"no-such-user-x\"");
	assert_refused(ACCESS_SVC("\"unix:@a\"", "  allow-groups = { \"no-such-group-x\" }\n"), 4,
		       "no such group \"no-such-group-x\"");
	assert_refused(ACCESS_SVC("\"127.0.0.1:9\"", "  busy-message = \"busy\"\n"), 5,
		       "'busy-message' (line 4) is sent when max-per-source or "
		       "max-service-connections turns a client away; neither is set");
	assert_refused(ACCESS_SVC("\"127.0.0.1:9\"", "  max-per-source = -1\n"), 4,
		       "is not a decimal number");
	assert_refused(ACCESS_SVC("\"127.0.0.1:9\"", "  allow = { \"::1\" }\n  allow = { \"::2\" }\n"),
		       5, "option 'allow' is given twice (first at line 4)");

	conf = load(ACCESS_SVC("\"*:9\", \"unix:@a\"",
			       "  allow = { \"10.0.0.0/8\", \"2001:db8::/32\" }\n"
			       "  allow += { \"192.168.1.1\" }\n"
			       "  deny = { \"10.66.0.0/16\" }\n"
			       "  allow-users = { \"root\", \"0\" }\n  allow-groups = { \"root\" }\n"
			       "  max-per-source = 4\n  max-service-connections = 100\n"
			       "  busy-message = \"busy\\r\\n\"\n"), err, sizeof(err));
	ck_assert_msg(conf != NULL, "%s", err);
	svc = &conf->services[0];
	ck_assert_uint_eq(svc->nallow, 3);
	ck_assert(svc->allow[0].v4);
	ck_assert_uint_eq(svc->allow[0].prefix, 96 + 8);
	ck_assert(!svc->allow[1].v4);
	ck_assert_uint_eq(svc->allow[2].prefix, 128);
	ck_assert_uint_eq(svc->ndeny, 1);
	ck_assert_uint_eq(svc->nallow_users, 2);
	ck_assert_uint_eq(svc->allow_users[1], 0);
	ck_assert_uint_eq(svc->nallow_groups, 1);
	ck_assert_uint_eq(svc->max_per_source, 4);
	ck_assert_uint_eq(svc->max_service_connections, 100);
	ck_assert_str_eq(svc->busy_message, "busy\r\n");
	conf_free(conf);
}
END_TEST

/* A service's user brings its own primary group; its group alone keeps the global user. */
START_TEST(service_identity)
{
	char err[CONF_ERR_MAX];
	struct config *conf;
	struct passwd *pw = getpwnam("daemon");
	uid_t daemon_uid = pw->pw_uid;
	gid_t daemon_gid = pw->pw_gid;

	conf = load("user = \"nobody\"\ngroup = \"root\"\n"
		    "service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"echo\"\n}\n"
		    "service b {\n  listen = { \"127.0.0.1:10\" }\n  handler = \"echo\"\n"
		    "  user = \"daemon\"\n}\n"
		    "service c {\n  listen = { \"127.0.0.1:11\" }\n  handler = \"echo\"\n"
		    "  group = \"daemon\"\n}\n", err, sizeof(err));
	ck_assert_msg(conf != NULL, "%s", err);
	ck_assert_str_eq(conf->services[0].run_as.user, "nobody");
	ck_assert_uint_eq(conf->services[0].run_as.gid, 0);
	ck_assert_str_eq(conf->services[1].run_as.user, "daemon");
	ck_assert_ptr_null(conf->services[1].run_as.group);
	ck_assert_uint_eq(conf->services[1].run_as.uid, daemon_uid);
	ck_assert_uint_eq(conf->services[1].run_as.gid, daemon_gid);
	ck_assert_str_eq(conf->services[2].run_as.user, "nobody");
	ck_assert_uint_eq(conf->services[2].run_as.gid, getgrnam("daemon")->gr_gid);
	conf_free(conf);
	assert_refused("service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"echo\"\n"
		       "  user = \"no-such-user-x\"\n}\n", 4, "option 'user': no such user");
}
END_TEST

START_TEST(decimal_and_duration_parsers)
{
	long v;

	ck_assert_int_eq(conf_parse_decimal("0", 0, 10, &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(conf_parse_decimal("9223372036854775808", 0, 100, &v), -2);
	ck_assert_int_eq(conf_parse_decimal("", 0, 100, &v), -1);
	ck_assert_int_eq(conf_parse_duration_ms("30", 0, 3600000, &v), 0);
	ck_assert_int_eq(v, 30000);
	ck_assert_int_eq(conf_parse_duration_ms("250ms", 0, 3600000, &v), 0);
	ck_assert_int_eq(v, 250);
	ck_assert_int_eq(conf_parse_duration_ms("5m", 0, 3600000, &v), 0);
	ck_assert_int_eq(v, 300000);
	ck_assert_int_eq(conf_parse_duration_ms("1h", 0, 3600000, &v), 0);
	ck_assert_int_eq(conf_parse_duration_ms("2h", 0, 3600000, &v), -2);
	ck_assert_int_eq(conf_parse_duration_ms("s", 0, 3600000, &v), -1);
	ck_assert_int_eq(conf_parse_duration_ms("1 s", 0, 3600000, &v), -1);
	/* Sizes, in KiB, rounded up. */
	ck_assert_int_eq(conf_parse_size_kib("512M", 0, 1L << 30, &v), 0);
	ck_assert_int_eq(v, 524288);
	ck_assert_int_eq(conf_parse_size_kib("1", 0, 1L << 30, &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(conf_parse_size_kib("2048", 0, 1L << 30, &v), 0);
	ck_assert_int_eq(v, 2);
	ck_assert_int_eq(conf_parse_size_kib("1T", 0, 1L << 30, &v), 0);
	ck_assert_int_eq(v, 1L << 30);
	ck_assert_int_eq(conf_parse_size_kib("2T", 0, 1L << 30, &v), -2);
	ck_assert_int_eq(conf_parse_size_kib("5X", 0, 1L << 30, &v), -1);
	ck_assert_int_eq(conf_parse_size_kib("M", 0, 1L << 30, &v), -1);
}
END_TEST

/* A fixed pool (workers) or an elastic one (min-workers, or max-workers
 * alone), the defaults that follow, and what cannot be combined. */
START_TEST(pool_options)
{
	char err[CONF_ERR_MAX];
	struct config *conf = load("service a {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"echo\"\n"
				   "  workers = 3\n}\n"
				   "service b {\n  listen = { \"127.0.0.1:10\" }\n  handler = \"echo\"\n"
				   "  max-workers = 6\n  max-memory = 100M\n  max-requests = 50\n}\n"
				   "service c {\n  listen = { \"127.0.0.1:11\" }\n  handler = \"echo\"\n"
				   "  min-workers = 2\n  scale-down-after = 5s\n}\n",
				   err, sizeof(err));

	ck_assert_msg(conf, "%s", err);
	ck_assert(!conf->services[0].elastic);
	ck_assert_uint_eq(conf->services[0].workers, 3);
	ck_assert_uint_eq(conf->services[0].max_workers, 12);
	ck_assert(conf->services[1].elastic);
	ck_assert_uint_eq(conf->services[1].min_workers, 1);
	ck_assert_uint_eq(conf->services[1].workers, 1);
	ck_assert_uint_eq(conf->services[1].max_workers, 6);
	ck_assert_uint_eq(conf->services[1].max_memory_kib, 102400);
	ck_assert_uint_eq(conf->services[1].max_requests, 50);
	ck_assert(conf->services[2].elastic);
	ck_assert_uint_eq(conf->services[2].workers, 2);
	ck_assert_uint_eq(conf->services[2].max_workers, 8);
	ck_assert_uint_eq(conf->services[2].scale_up_after_ms, 1000);
	ck_assert_uint_eq(conf->services[2].scale_down_after_ms, 5000);
	conf_free(conf);
	assert_refused(EXEC_SVC("  exec = { \"/bin/true\" }\n  workers = 2\n  min-workers = 1\n"), 7,
		       "'workers' (line 5) and 'min-workers' (line 6) are alternatives");
	assert_refused(EXEC_SVC("  exec = { \"/bin/true\" }\n  min-workers = 4\n  max-workers = 2\n"),
		       7, "max-workers 2 (line 6) is fewer than min-workers 4");
	assert_refused(EXEC_SVC("  exec = { \"/bin/true\" }\n  workers = 2\n  scale-up-after = 2s\n"),
		       7, "'scale-up-after' (line 6) applies to an elastic pool");
	assert_refused(EXEC_SVC("  exec = { \"/bin/true\" }\n  max-memory = 5Q\n"), 5,
		       "is not a size");
	assert_refused(EXEC_SVC("  exec = { \"/bin/true\" }\n  hang-timeout = 2h\n"), 5,
		       "out of range (0 (off) to 1h)");
}
END_TEST

START_TEST(missing_file)
{
	char err[CONF_ERR_MAX], missing[256];

	snprintf(missing, sizeof(missing), "%s/nope.conf", dir);
	ck_assert_ptr_null(conf_load(missing, err, sizeof(err)));
	ck_assert_msg(strstr(err, "nope.conf: cannot open: No such file") != NULL, "%s", err);
}
END_TEST

/* -t checks and binds nothing: a port in use does not matter to it. */
START_TEST(check_mode)
{
	uint16_t port = tl_free_port();
	int busy = tl_listen_loopback(port, false);
	char text[256], *out;

	snprintf(text, sizeof(text), "service echo {\n listen = { \"127.0.0.1:%u\" }\n"
		 " handler = \"echo\"\n}\n", port);
	tl_write_file(path, text);
	ck_assert_int_eq(tl_run_preforkd(&out, "-t", "-c", path, NULL), 0);
	ck_assert_msg(strstr(out, "configuration OK") != NULL, "%s", out);
	free(out);
	close(busy);

	tl_write_file(path, "service echo {\n listen = { \"127.0.0.1:1\" }\n handler = \"echho\"\n}\n");
	ck_assert_int_eq(tl_run_preforkd(&out, "-t", "-c", path, NULL), 78);
	ck_assert_msg(strstr(out, ":3: option 'handler': unknown handler \"echho\"") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "configuration OK") == NULL, "%s", out);
	free(out);

	/* Without -t a bad config also exits 78, before binding anything. */
	ck_assert_int_eq(tl_run_preforkd(&out, "-c", path, NULL), 78);
	free(out);
}
END_TEST

/* Opening a FIFO for reading waits for a writer: -t (and a reload) must not. */
START_TEST(fifo_is_refused_promptly)
{
	char err[CONF_ERR_MAX], *out;
	uint64_t start = tl_now_ms();

	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(tl_run_preforkd(&out, "-t", "-c", path, NULL), 78);
	ck_assert_msg(tl_now_ms() - start < 5000, "took %llu ms",
		      (unsigned long long)(tl_now_ms() - start));
	ck_assert_msg(strstr(out, ": not a regular file") != NULL, "%s", out);
	free(out);
	ck_assert_ptr_null(conf_load(path, err, sizeof(err)));
	ck_assert_msg(strstr(err, path) == err && strstr(err, ": not a regular file"), "%s", err);
}
END_TEST

START_TEST(command_line)
{
	char *out;

	ck_assert_int_eq(tl_run_preforkd(&out, "-x", NULL), 2);
	ck_assert_msg(strstr(out, "Usage: preforkd") != NULL, "%s", out);
	free(out);
	ck_assert_int_eq(tl_run_preforkd(&out, "-t", "extra", NULL), 2);
	free(out);
	ck_assert_int_eq(tl_run_preforkd(&out, "-V", NULL), 0);
	ck_assert_msg(strncmp(out, "preforkd " PACKAGE_VERSION, strlen("preforkd " PACKAGE_VERSION)) == 0, "%s", out);
	free(out);
	ck_assert_int_eq(tl_run_preforkd(&out, "-h", NULL), 0);
	ck_assert_msg(strstr(out, "-t ") != NULL, "%s", out);
	free(out);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("conf");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, good_config);
	tcase_add_test(tc, bundled_config_is_valid);
	tcase_add_test(tc, line_numbers_after_comments);
	tcase_add_test(tc, strip_comments_keeps_newlines);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, environment_is_not_expanded);
	tcase_add_test(tc, syntax_errors_name_the_line);
	tcase_add_test(tc, signs_and_stars_are_refused);
	tcase_add_test(tc, values_in_messages_are_escaped);
	tcase_add_test(tc, numbers_are_decimal_and_ranged);
	tcase_add_test(tc, option_rules);
	tcase_add_test(tc, unix_options_need_unix_listener);
	tcase_add_test(tc, descriptor_limit_checked);
	tcase_add_test(tc, access_options);
	tcase_add_test(tc, service_identity);
	tcase_add_test(tc, exec_options);
	tcase_add_test(tc, env_cannot_shadow_connection_variables);
	tcase_add_test(tc, exec_checked_as_service_user);
	tcase_add_test(tc, decimal_and_duration_parsers);
	tcase_add_test(tc, missing_file);
	tcase_add_test(tc, check_mode);
	tcase_add_test(tc, fifo_is_refused_promptly);
	tcase_add_test(tc, command_line);
	tcase_add_test(tc, app_options);
	tcase_add_test(tc, metrics_listen_addresses);
	tcase_add_test(tc, pool_options);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
