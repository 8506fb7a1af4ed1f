#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# check_reload.sh - 20 "systemctl reload preforkd" under continuous TCP and
# unix load: no connection fails, and each reload has finished when
# systemctl returns (ExecReload= is the synchronous "preforkctl reload"):
# the generation has gone up by exactly one, no reload is under way, and
# the last one succeeded. Built-in workers are ready within a few ms, less
# than systemctl's own round trip, so the config adds an app service whose
# workers (tests/appworker) send READY=1 300 ms after they start: every
# reload takes that long. Then one reload whose new workers exit at start
# (the config itself is fine, so "preforkd -t" passes): systemctl reload
# must fail, and the daemon go on serving the generation it had.
#
# systemd 252 itself holds a reload job open from the daemon's RELOADING=1
# to its READY=1 when RELOADING=1 arrives before ExecReload= has exited, so
# "kill -HUP $MAINPID" is seldom caught returning early here; it is caught
# reporting the failed reload as done.
. "$(dirname "$0")/lib.sh"

reloads=20
ready_delay=300
fresh
cat >> "$CONF" <<CONF

# check_reload: a service whose workers are ready $ready_delay ms after they start.
service slow {
    listen  = { "127.0.0.1:7010", "unix:/run/preforkd/slow.sock" }
    handler = "app"
    exec    = { "$SRC/tests/appworker", "--ready-delay=$ready_delay" }
    workers = 2
}
CONF
systemctl start preforkd.service || fail "systemctl start preforkd failed"
main=$(prop preforkd.service MainPID)
load_start tcp "$TCP" 2
load_start unix "$UNIX" 2
load_start app-tcp 127.0.0.1:7010 2
load_start app-unix unix:/run/preforkd/slow.sock 2
flowing 50
g0=$(status .generation)
times='' durations=''
for ((i = 1; i <= reloads; i++)); do
	t0=$(now_ms)
	systemctl reload preforkd.service || fail "reload $i: systemctl reload failed"
	times="$times $(($(now_ms) - t0))"
	read -r gen reloading ok ms < <(status '[.generation, .reloading, .last_reload.ok, .last_reload.duration_ms] | @tsv')
	[ "$gen" = $((g0 + i)) ] && [ "$reloading" = false ] && [ "$ok" = true ] ||
		fail "reload $i: when systemctl reload returned the daemon was at generation $gen" \
		     "(want $((g0 + i))), reloading=$reloading, last reload ok=$ok: systemctl returned" \
		     "before the reload had finished"
	durations="$durations $ms"
done
flowing 50

sed -i "s|\"--ready-delay=$ready_delay\"|\"--exit-at-start=1\"|" "$CONF"
preforkd -t -c "$CONF" > /dev/null 2>&1 || fail "the config with --exit-at-start=1 does not pass preforkd -t"
g=$(status .generation)
if systemctl reload preforkd.service 2>/dev/null; then
	fail "systemctl reload succeeded, but the reload failed: $(status .last_reload.result)"
fi
read -r gen ok result < <(status '[.generation, .last_reload.ok, .last_reload.result] | @tsv')
[ "$gen" = "$g" ] && [ "$ok" = false ] ||
	fail "after the failed reload: generation $gen (was $g), last reload ok=$ok"
note "a reload whose new workers exit: systemctl reload failed, still generation $g ($result)"
flowing 50
load_stop
[ "$(prop preforkd.service MainPID)" = "$main" ] || fail "MainPID changed during the reloads"
is_active || fail "preforkd.service not active after the reloads"
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
maximum() { printf '%s\n' "$@" | sort -n | tail -n 1; }
[ "$load_ops" -gt 0 ] || fail "the load made no connection"
[ "$load_failed" -eq 0 ] || fail "$reloads reloads under load: $load_text"
pass "$reloads reloads, each finished when systemctl returned (generation $g0 -> $((g0 + reloads))), a failed one failed;" \
     "systemctl reload $(median $times) ms median, $(maximum $times) max, of which the daemon's reload" \
     "$(median $durations) ms median; load: $load_text"
