/* notify.c - sd_notify messages from the master (built only with libsystemd). */
#include "config.h"

#include "notify.h"

#include <systemd/sd-daemon.h>

#include "log.h"

static void notify_send(const char *state, const char *status)
{
	int rc = status ? sd_notifyf(0, "%s\nSTATUS=%s", state, status) : sd_notify(0, state);

	if (rc < 0)
		log_errno(LOG_WARNING, -rc, "sd_notify %s", state);
}

void notify_ready(const char *status)
{
	notify_send("READY=1", status);
}

void notify_stopping(const char *status)
{
	notify_send("STOPPING=1", status);
}

void notify_status(const char *status)
{
	int rc = sd_notifyf(0, "STATUS=%s", status);

	if (rc < 0)
		log_errno(LOG_WARNING, -rc, "sd_notify STATUS");
}
