/* SPDX-License-Identifier: ISC */
/* check_slot.c - the worker slot's state machine, driven directly: every
 * transition, the respawn back-off, and when a slot is given up. */
#include "config.h"

#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>

#include "common/array.h"
#include "master/slot.h"
#include "testlib.h"
#include "worker/worker.h"

/* Wait statuses as waitpid() reports them. */
#define EXITED(code) ((code) << 8)
#define KILLED(sig) (sig)

static struct slot fresh(void)
{
	return (struct slot){ .state = SLOT_WAITING, .channel_fd = -1 };
}

static enum slot_outcome at(struct slot *s, enum slot_event ev, uint64_t now, pid_t pid,
			    int status, enum generation_role role)
{
	return slot_event(s, ev, &(struct slot_event_data){ .now = now, .pid = pid,
							     .status = status, .role = role });
}

/* Forked, then ready: a serving slot's normal life, and its stop. */
START_TEST(start_ready_stop)
{
	struct slot s = fresh();

	ck_assert_int_eq(at(&s, SLOT_SPAWNED, 1000, 42, 0, GEN_SERVING), SLOT_NOTHING);
	ck_assert_int_eq(s.state, SLOT_STARTING);
	ck_assert_int_eq(s.pid, 42);
	ck_assert_uint_eq(s.started_ms, 1000);
	ck_assert_int_eq(at(&s, SLOT_READY_SAID, 1010, 0, 0, GEN_SERVING), SLOT_NOTHING);
	ck_assert_int_eq(s.state, SLOT_READY);
	ck_assert(slot_alive(&s));
	ck_assert_int_eq(at(&s, SLOT_STOP, 2000, 0, 0, GEN_DRAINING), SLOT_NOTHING);
	ck_assert_int_eq(s.state, SLOT_STOPPING);
	ck_assert(slot_alive(&s));
	/* Told to stop, it exits: done, whatever the status. */
	ck_assert_int_eq(at(&s, SLOT_EXITED, 2100, 0, KILLED(SIGKILL), GEN_DRAINING), SLOT_NOTHING);
	ck_assert_int_eq(s.state, SLOT_DONE);
	ck_assert_int_eq(s.pid, 0);
	ck_assert(!slot_alive(&s));
	/* A stop of a slot without a process: done at once. */
	s = fresh();
	ck_assert_int_eq(at(&s, SLOT_STOP, 0, 0, 0, GEN_DRAINING), SLOT_NOTHING);
	ck_assert_int_eq(s.state, SLOT_DONE);
	/* A stop while starting. */
	s = fresh();
	at(&s, SLOT_SPAWNED, 0, 7, 0, GEN_PENDING);
	at(&s, SLOT_STOP, 0, 0, 0, GEN_DRAINING);
	ck_assert_int_eq(s.state, SLOT_STOPPING);
}
END_TEST

/* Events a state does not expect change nothing. */
START_TEST(unexpected_events_ignored)
{
	static const enum slot_state finished[] = { SLOT_DONE };
	struct slot s = fresh();

	ck_assert_int_eq(at(&s, SLOT_READY_SAID, 0, 0, 0, GEN_SERVING), SLOT_NOTHING);
	ck_assert_int_eq(at(&s, SLOT_EXITED, 0, 0, 0, GEN_SERVING), SLOT_NOTHING);
	ck_assert_int_eq(s.state, SLOT_WAITING);
	at(&s, SLOT_SPAWNED, 0, 9, 0, GEN_SERVING);
	ck_assert_int_eq(at(&s, SLOT_SPAWNED, 5, 10, 0, GEN_SERVING), SLOT_NOTHING);
	ck_assert_int_eq(s.pid, 9);
	at(&s, SLOT_READY_SAID, 0, 0, 0, GEN_SERVING);
	at(&s, SLOT_READY_SAID, 0, 0, 0, GEN_SERVING);
	ck_assert_int_eq(s.state, SLOT_READY);
	at(&s, SLOT_STOP, 0, 0, 0, GEN_DRAINING);
	ck_assert_int_eq(at(&s, SLOT_READY_SAID, 0, 0, 0, GEN_DRAINING), SLOT_NOTHING);
	ck_assert_int_eq(at(&s, SLOT_STOP, 0, 0, 0, GEN_DRAINING), SLOT_NOTHING);
	ck_assert_int_eq(s.state, SLOT_STOPPING);
	for (size_t i = 0; i < ARRAY_SIZE(finished); i++) {
		for (int ev = 0; ev < SLOT_EVENTS; ev++) {
			s = fresh();
			s.state = finished[i];
			ck_assert_int_eq(at(&s, (enum slot_event)ev, 0, 1, 0, GEN_SERVING), SLOT_NOTHING);
			ck_assert_int_eq(s.state, finished[i]);
		}
	}
}
END_TEST

/* A serving worker that dies is respawned: at once after a long life, then
 * after 100, 200, 400, 800 ms while it keeps dying within 1 s of its start;
 * the fifth quick failure in a row gives the slot up. */
START_TEST(respawn_back_off_and_give_up)
{
	static const unsigned delays[] = { 100, 200, 400, 800 };
	struct slot s = fresh();
	uint64_t now = 10000;

	at(&s, SLOT_SPAWNED, now, 1, 0, GEN_SERVING);
	at(&s, SLOT_READY_SAID, now, 0, 0, GEN_SERVING);
	now += 5000;
	ck_assert_int_eq(at(&s, SLOT_EXITED, now, 0, KILLED(SIGKILL), GEN_SERVING), SLOT_RESPAWN);
	ck_assert_int_eq(s.state, SLOT_WAITING);
	ck_assert_uint_eq(s.respawn_at_ms, now);	/* lived long: at once */
	ck_assert_uint_eq(s.quick_failures, 0);
	for (unsigned i = 0; i < 4; i++) {
		at(&s, SLOT_SPAWNED, now, 2 + (pid_t)i, 0, GEN_SERVING);
		now += SLOT_QUICK_EXIT_MS - 1;
		ck_assert_int_eq(at(&s, SLOT_EXITED, now, 0, EXITED(1), GEN_SERVING), SLOT_RESPAWN);
		ck_assert_uint_eq(s.quick_failures, i + 1);
		ck_assert_uint_eq(s.respawn_at_ms - now, delays[i]);
	}
	at(&s, SLOT_SPAWNED, now, 9, 0, GEN_SERVING);
	ck_assert_int_eq(at(&s, SLOT_EXITED, now + 1, 0, EXITED(1), GEN_SERVING), SLOT_GAVE_UP_QUICK);
	ck_assert_int_eq(s.state, SLOT_FAILED);
	ck_assert_uint_eq(s.quick_failures, SLOT_MAX_QUICK_FAILURES);
}
END_TEST

/* A life of a second or more, ready, starts the count of quick failures over. */
START_TEST(long_life_resets_the_back_off)
{
	struct slot s = fresh();

	s.quick_failures = 3;	/* as if it had failed three times in a row */
	at(&s, SLOT_SPAWNED, 0, 1, 0, GEN_SERVING);
	ck_assert_int_eq(at(&s, SLOT_EXITED, 10, 0, EXITED(1), GEN_SERVING), SLOT_RESPAWN);
	ck_assert_uint_eq(s.respawn_at_ms, 10 + 800);
	at(&s, SLOT_SPAWNED, 810, 1, 0, GEN_SERVING);
	at(&s, SLOT_READY_SAID, 820, 0, 0, GEN_SERVING);
	ck_assert_int_eq(at(&s, SLOT_EXITED, 810 + SLOT_QUICK_EXIT_MS, 0, EXITED(0), GEN_SERVING),
			 SLOT_RESPAWN);
	ck_assert_uint_eq(s.quick_failures, 0);
	ck_assert_uint_eq(s.respawn_at_ms, 810 + SLOT_QUICK_EXIT_MS);
}
END_TEST

/* Exit status 100: the worker can never work; the slot is given up at once. */
/* A worker that never said it was ready failed to start, however long it
 * ran: an app worker killed at its start-timeout counts towards giving up. */
START_TEST(never_ready_is_a_failed_start)
{
	struct slot s = fresh();
	uint64_t now = 0;

	for (unsigned i = 0; i < SLOT_MAX_QUICK_FAILURES - 1; i++) {
		at(&s, SLOT_SPAWNED, now, 1, 0, GEN_SERVING);
		now += 30000;
		ck_assert_int_eq(at(&s, SLOT_EXITED, now, 0, KILLED(SIGKILL), GEN_SERVING),
				 SLOT_RESPAWN);
		ck_assert_uint_eq(s.quick_failures, i + 1);
		now = s.respawn_at_ms;
	}
	at(&s, SLOT_SPAWNED, now, 1, 0, GEN_SERVING);
	ck_assert_int_eq(at(&s, SLOT_EXITED, now + 30000, 0, KILLED(SIGKILL), GEN_SERVING),
			 SLOT_GAVE_UP_QUICK);
}
END_TEST

/* A hung worker set aside for its replacement: the slot respawns now,
 * without a failure counted; only a ready worker can be replaced. */
START_TEST(replaced_respawns_now)
{
	struct slot s = fresh();

	s.quick_failures = 2;
	at(&s, SLOT_SPAWNED, 100, 7, 0, GEN_SERVING);
	ck_assert_int_eq(at(&s, SLOT_REPLACED, 200, 0, 0, GEN_SERVING), SLOT_NOTHING);
	ck_assert_int_eq(s.state, SLOT_STARTING);
	at(&s, SLOT_READY_SAID, 300, 0, 0, GEN_SERVING);
	ck_assert_int_eq(at(&s, SLOT_REPLACED, 5000, 0, 0, GEN_SERVING), SLOT_RESPAWN);
	ck_assert_int_eq(s.state, SLOT_WAITING);
	ck_assert_int_eq(s.pid, 0);
	ck_assert_uint_eq(s.respawn_at_ms, 5000);
	ck_assert_uint_eq(s.quick_failures, 2);
	/* Its exit, reaped later, is no event of the slot's. */
	ck_assert_int_eq(at(&s, SLOT_EXITED, 5100, 0, KILLED(SIGABRT), GEN_SERVING), SLOT_NOTHING);
	ck_assert_int_eq(s.state, SLOT_WAITING);
}
END_TEST

/* WORKER_EXIT_FATAL is preforkd's own worker saying it can never work; a
 * program run as an app worker may exit with any status. */
START_TEST(app_exit_status_is_its_own)
{
	struct slot s = fresh();

	s.app = true;
	at(&s, SLOT_SPAWNED, 0, 1, 0, GEN_SERVING);
	at(&s, SLOT_READY_SAID, 10, 0, 0, GEN_SERVING);
	ck_assert_int_eq(at(&s, SLOT_EXITED, 5000, 0, EXITED(WORKER_EXIT_FATAL), GEN_SERVING),
			 SLOT_RESPAWN);
	ck_assert_int_eq(s.state, SLOT_WAITING);
}
END_TEST

START_TEST(fatal_exit_gives_up)
{
	struct slot s = fresh();

	at(&s, SLOT_SPAWNED, 0, 1, 0, GEN_SERVING);
	at(&s, SLOT_READY_SAID, 0, 0, 0, GEN_SERVING);
	ck_assert_int_eq(at(&s, SLOT_EXITED, 60000, 0, EXITED(WORKER_EXIT_FATAL), GEN_SERVING),
			 SLOT_GAVE_UP_FATAL);
	ck_assert_int_eq(s.state, SLOT_FAILED);
	/* Killed by a signal with the same number is not that. */
	s = fresh();
	at(&s, SLOT_SPAWNED, 0, 1, 0, GEN_SERVING);
	ck_assert_int_eq(at(&s, SLOT_EXITED, 60000, 0, KILLED(SIGKILL), GEN_SERVING), SLOT_RESPAWN);
}
END_TEST

/* A new worker of a reload that dies before it is ready fails the reload;
 * one of a draining generation is simply done. */
START_TEST(role_decides_a_death)
{
	struct slot s = fresh();

	at(&s, SLOT_SPAWNED, 0, 1, 0, GEN_PENDING);
	ck_assert_int_eq(at(&s, SLOT_EXITED, 5, 0, EXITED(1), GEN_PENDING), SLOT_FAILED_PENDING);
	ck_assert_int_eq(s.state, SLOT_FAILED);
	s = fresh();
	at(&s, SLOT_SPAWNED, 0, 1, 0, GEN_SERVING);
	at(&s, SLOT_READY_SAID, 0, 0, 0, GEN_SERVING);
	ck_assert_int_eq(at(&s, SLOT_EXITED, 5, 0, EXITED(0), GEN_DRAINING), SLOT_NOTHING);
	ck_assert_int_eq(s.state, SLOT_DONE);
}
END_TEST

/* A recycle: the old worker serves while its replacement starts (RETIRING),
 * and is stopped once that one is ready, or kept when it fails. */
START_TEST(retiring_worker_stays_until_replaced)
{
	struct slot old = fresh(), new = fresh();

	at(&old, SLOT_SPAWNED, 0, 1, 0, GEN_SERVING);
	ck_assert_int_eq(at(&old, SLOT_RETIRE, 5, 0, 0, GEN_SERVING), SLOT_NOTHING);
	ck_assert_int_eq(old.state, SLOT_STARTING);	/* only a ready worker retires */
	at(&old, SLOT_READY_SAID, 10, 0, 0, GEN_SERVING);
	at(&old, SLOT_RETIRE, 20, 0, 0, GEN_SERVING);
	ck_assert_int_eq(old.state, SLOT_RETIRING);
	ck_assert(slot_alive(&old));
	ck_assert(!slot_counted(&old));
	/* Its replacement dies before it is ready: no respawn, the old one is kept. */
	new.replaces = &old;
	at(&new, SLOT_SPAWNED, 30, 2, 0, GEN_SERVING);
	ck_assert(slot_counted(&new));
	ck_assert_int_eq(at(&new, SLOT_EXITED, 40, 0, EXITED(1), GEN_SERVING),
			 SLOT_FAILED_REPLACEMENT);
	ck_assert_int_eq(new.state, SLOT_DONE);
	ck_assert_uint_eq(new.quick_failures, 0);
	ck_assert_int_eq(at(&old, SLOT_KEEP, 50, 0, 0, GEN_SERVING), SLOT_NOTHING);
	ck_assert_int_eq(old.state, SLOT_READY);
	/* Retiring again, then told to stop: an ordinary stop. */
	at(&old, SLOT_RETIRE, 60, 0, 0, GEN_SERVING);
	at(&old, SLOT_STOP, 70, 0, 0, GEN_SERVING);
	ck_assert_int_eq(old.state, SLOT_STOPPING);
	ck_assert_int_eq(at(&old, SLOT_EXITED, 80, 0, EXITED(0), GEN_SERVING), SLOT_NOTHING);
	ck_assert_int_eq(old.state, SLOT_DONE);
	/* Dying while retiring: its replacement takes over, nothing respawns. */
	old = fresh();
	at(&old, SLOT_SPAWNED, 0, 1, 0, GEN_SERVING);
	at(&old, SLOT_READY_SAID, 10, 0, 0, GEN_SERVING);
	at(&old, SLOT_RETIRE, 20, 0, 0, GEN_SERVING);
	ck_assert_int_eq(at(&old, SLOT_EXITED, 30, 0, KILLED(SIGSEGV), GEN_SERVING),
			 SLOT_DIED_RETIRING);
	ck_assert_int_eq(old.state, SLOT_DONE);
	ck_assert_int_eq(old.pid, 0);
}
END_TEST

/* A slot given up on: a stop makes it done (a pool shrinking), a recycle
 * tries it again with a clean record; nothing else moves it. */
START_TEST(failed_slot_retried_or_removed)
{
	struct slot s = fresh();

	s.state = SLOT_FAILED;
	s.quick_failures = SLOT_MAX_QUICK_FAILURES;
	ck_assert(slot_counted(&s));
	for (int ev = 0; ev < SLOT_EVENTS; ev++) {
		if (ev == SLOT_STOP || ev == SLOT_RETIRE)
			continue;
		ck_assert_int_eq(at(&s, (enum slot_event)ev, 0, 1, 0, GEN_SERVING), SLOT_NOTHING);
		ck_assert_int_eq(s.state, SLOT_FAILED);
	}
	ck_assert_int_eq(at(&s, SLOT_RETIRE, 700, 0, 0, GEN_SERVING), SLOT_RESPAWN);
	ck_assert_int_eq(s.state, SLOT_WAITING);
	ck_assert_uint_eq(s.quick_failures, 0);
	ck_assert_uint_eq(s.respawn_at_ms, 700);
	s.state = SLOT_FAILED;
	at(&s, SLOT_STOP, 800, 0, 0, GEN_SERVING);
	ck_assert_int_eq(s.state, SLOT_DONE);
	ck_assert(!slot_counted(&s));
}
END_TEST

/* A fork that fails is tried again 5 s later. */
START_TEST(spawn_failure_retried)
{
	struct slot s = fresh();

	ck_assert_int_eq(at(&s, SLOT_SPAWN_FAILED, 100, 0, 0, GEN_SERVING), SLOT_RESPAWN);
	ck_assert_int_eq(s.state, SLOT_WAITING);
	ck_assert_uint_eq(s.respawn_at_ms, 100 + SLOT_RESPAWN_DELAY_MAX_MS);
	ck_assert_str_eq(slot_state_name(s.state), "waiting");
	ck_assert_str_eq(slot_state_name(SLOT_DONE), "done");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("slot");
	TCase *tc = tcase_create("slot");

	tcase_add_test(tc, start_ready_stop);
	tcase_add_test(tc, unexpected_events_ignored);
	tcase_add_test(tc, respawn_back_off_and_give_up);
	tcase_add_test(tc, long_life_resets_the_back_off);
	tcase_add_test(tc, never_ready_is_a_failed_start);
	tcase_add_test(tc, app_exit_status_is_its_own);
	tcase_add_test(tc, replaced_respawns_now);
	tcase_add_test(tc, fatal_exit_gives_up);
	tcase_add_test(tc, role_decides_a_death);
	tcase_add_test(tc, retiring_worker_stays_until_replaced);
	tcase_add_test(tc, failed_slot_retried_or_removed);
	tcase_add_test(tc, spawn_failure_retried);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
