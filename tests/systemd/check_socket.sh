#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# check_socket.sh - socket activation through preforkd.socket: systemd holds
# 127.0.0.1:7007 and /run/preforkd/echo.sock, the first client on either
# starts preforkd.service, which adopts both sockets (preforkctl status says
# "adopted", and ss shows systemd and preforkd on the same socket) and
# answers that first client.
. "$(dirname "$0")/lib.sh"

# holders SS-ARGS...: whether systemd and the master (not only workers,
# whose titles are their service's) both hold the listening socket.
holders() {
	local users
	users=$(ss -Hlp "$@" | sed -n 's/.*users:(\(.*\))$/\1/p')
	case "$users" in *'("systemd",pid=1,'*) ;; *) echo "$users"; return 1;; esac
	case "$users" in *'("preforkd",'*) ;; *) echo "$users"; return 1;; esac
}

fresh
systemctl start preforkd.socket || fail "systemctl start preforkd.socket failed"
[ "$(prop preforkd.socket ActiveState)" = active ] || fail "preforkd.socket not active"
[ "$(prop preforkd.service ActiveState)" = inactive ] || fail "preforkd.service started before any client"
for first in "$TCP" "$UNIX"; do
	echo_once "$first" || fail "first client on $first (socket unit listening, service stopped) not answered"
	# Its workers may answer before systemd has read the master's READY=1.
	wait_until 10 "preforkd.service active after a client on $first" is_active
	adopted=$(status '[.services[].listeners[] | select(.adopted) | .address] | join(",")')
	[ "$adopted" = "127.0.0.1:7007,unix:/run/preforkd/echo.sock" ] ||
		fail "activated by $first, the daemon adopted '$adopted', not both sockets of preforkd.socket"
	tcp_holders=$(holders -t 'sport = :7007') ||
		fail "activated by $first: 127.0.0.1:7007 is not held by both systemd and preforkd: $tcp_holders"
	unix_holders=$(holders -x src /run/preforkd/echo.sock) ||
		fail "activated by $first: echo.sock is not held by both systemd and preforkd: $unix_holders"
	echo_once "$TCP" && echo_once "$UNIX" || fail "activated by $first, not serving both"
	note "activated by a client on $first: MainPID $(prop preforkd.service MainPID), adopted $adopted, held by systemd and preforkd"
	systemctl stop preforkd.service 2>/dev/null || fail "systemctl stop preforkd.service failed"
	[ "$(prop preforkd.socket ActiveState)" = active ] || fail "preforkd.socket stopped with the service"
done
pass "a first client over TCP, then one over unix, started preforkd.service, which adopted both sockets of preforkd.socket"
