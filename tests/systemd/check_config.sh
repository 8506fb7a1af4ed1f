#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# check_config.sh - a config error neither takes a running daemon down nor
# makes systemd restart it in a loop:
# - "systemctl reload" with a broken config fails, and the daemon keeps
#   serving with the same MainPID and generation;
# - "systemctl restart" with it fails once: the daemon exits 78, which the
#   unit's RestartPreventExitStatus= holds, the unit ends failed with
#   result exit-code, and over 3 s (30 of the unit's RestartSec) nothing is
#   started again; the error is in the journal once;
# - through preforkd.socket, where each client would start the service
#   again, the starts stop at the start limit, the socket unit fails, and
#   that figure is reported;
# then with the config restored it starts again.
. "$(dirname "$0")/lib.sh"

fresh
systemctl start preforkd.service || fail "systemctl start preforkd failed"
main=$(prop preforkd.service MainPID)
gen=$(status .generation)
sed -i 's/^\([[:space:]]*workers[[:space:]]*=\).*/\1 0/' "$CONF"
grep -q '^[[:space:]]*workers[[:space:]]*= 0' "$CONF" || fail "could not break $CONF"

if systemctl reload preforkd.service 2>"$tmp/reload.err"; then
	fail "systemctl reload with a broken config succeeded"
fi
is_active || fail "a reload with a broken config took preforkd.service to $(prop preforkd.service ActiveState)"
[ "$(prop preforkd.service MainPID)" = "$main" ] || fail "a failed reload changed MainPID"
[ "$(status .generation)" = "$gen" ] || fail "a failed reload changed the generation"
echo_once "$TCP" || fail "not serving after a failed reload"
note "reload refused, still serving generation $gen as pid $main"

mark=$(journal_mark)
restarts=$(prop preforkd.service NRestarts)
if systemctl restart preforkd.service 2>"$tmp/restart.err"; then
	fail "systemctl restart with a broken config succeeded"
fi
# 3 s, 30 times the unit's RestartSec: a loop would start it again and again.
states=
for ((i = 0; i < 30; i++)); do
	sleep 0.1
	states="$states $(prop preforkd.service ActiveState)"
done
state=$(prop preforkd.service ActiveState)
result=$(prop preforkd.service Result)
code=$(prop preforkd.service ExecMainStatus)
n=$(prop preforkd.service NRestarts)
starts=$(journal_since "$mark" | grep -c 'out of range' || true)
seen=$(printf '%s\n' $states | sort | uniq -c | awk '{ printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1 }')
[ "$starts" = 1 ] && [ "$n" = "$restarts" ] && [ "$state" = failed ] && [ "$result" = exit-code ] &&
	[ "$code" = 78 ] ||
	fail "a restart with a broken config: started $starts times in 3 s, NRestarts $restarts -> $n," \
	     "now $state with Result=$result, exit status $code (want once, unchanged, failed, exit-code, 78);" \
	     "states sampled every 100 ms: $seen"
note "restart: exit 78, failed with result exit-code, NRestarts stays $restarts for 3 s, started once"

# Socket activation: every client would start the service again.
systemctl reset-failed preforkd.service
systemctl start preforkd.socket || fail "systemctl start preforkd.socket failed"
mark=$(journal_mark)
# One client, trying again for 5 s (each try would start the service): the
# time in which the starts must stop.
timeout 15 "$LOADGEN" -m conn -c 1 -n 1 -d 5 -S none "$TCP" > "$tmp/client" 2>&1 || true
socket_done() { [ "$(prop preforkd.socket ActiveState)" != active ]; }
wait_until 20 "preforkd.socket giving up" socket_done
starts=$(journal_since "$mark" | grep -c 'out of range' || true)
sock=$(prop preforkd.socket ActiveState)/$(prop preforkd.socket Result)
svc=$(prop preforkd.service ActiveState)/$(prop preforkd.service Result)
limit=$(prop preforkd.service StartLimitBurst)
[ "$starts" -ge 1 ] && [ "$starts" -le "$limit" ] ||
	fail "through preforkd.socket the broken config was started $starts times (start limit $limit)"
note "through preforkd.socket: $starts starts of the broken config (StartLimitBurst=$limit), then socket $sock, service $svc; the client: $(grep -o 'ops=[0-9]*\|err_[a-z]*=[1-9][0-9]*' "$tmp/client" | paste -sd' ')"

fresh
systemctl start preforkd.service || fail "systemctl start with the config restored failed"
echo_once "$TCP" || fail "not serving with the config restored"
pass "reload refused and kept serving; restart failed once with 78 and stayed failed;" \
     "through the socket $starts starts then $sock; restored and serving"
