/* notify.h - what the master tells the service manager (sd_notify); no-ops without libsystemd. */
#ifndef PREFORKD_NOTIFY_H
#define PREFORKD_NOTIFY_H

#include "config.h"

#ifdef HAVE_SYSTEMD
void notify_ready(const char *status);
void notify_stopping(const char *status);
void notify_status(const char *status);
#else
static inline void notify_ready(const char *status) { (void)status; }
static inline void notify_stopping(const char *status) { (void)status; }
static inline void notify_status(const char *status) { (void)status; }
#endif

#endif
