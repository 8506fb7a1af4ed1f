#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# contrib/debian/check-install.sh - the package's life in a booted Debian 12
# container: apt install, the user, the service started and serving TCP and
# Unix echo with its workers as preforkd, reload, reinstall, then apt purge
# and nothing left behind. One PASS or FAIL line per check.
#
#   contrib/debian/check-install.sh PID1 DEB
#
#   PID1  the host's PID of the container's systemd (PID 1 in there), e.g. of
#         "systemd-nspawn -b": everything runs through nsenter -t PID1 -a, and
#         the .deb is copied in through /proc/PID1/root, so any booted
#         container will do (this script's, or that of tests/systemd/)
#   DEB   preforkd_VERSION_ARCH.deb
#
# The container needs no network: the package's dependencies (libconfuse2,
# libsystemd0, systemd) must be installed in it already. A preforkd package
# already there is purged first; one of "make install" fails the run (use a
# fresh container). Exit status: 0 all passed, 1 a check failed, 2 usage.
set -uo pipefail

usage() { awk 'NR >= 3 && /^#/ { sub(/^# ?/, ""); print; next } NR >= 3 { exit }' "$0"; }

[ $# -eq 2 ] || { usage; exit 2; }
pid1=$1
deb=$2
[ -d "/proc/$pid1/root" ] || { echo "check-install.sh: no process $pid1" >&2; exit 2; }
[ -f "$deb" ] || { echo "check-install.sh: no file $deb" >&2; exit 2; }

failed=0
pass() { echo "PASS deb-$1"; }
fail() { echo "FAIL deb-$1: $2"; failed=1; }
ct() {
	nsenter -t "$pid1" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C \
		DEBIAN_FRONTEND=noninteractive "$@"
}
log=$(mktemp "${TMPDIR:-/tmp}/preforkd-check-install.XXXXXX")
trap 'rm -f "$log"' EXIT
# A command in the container; on failure its output is shown with the reason.
ct_ok() {	# name, command...
	local name=$1
	shift
	if ct "$@" >"$log" 2>&1; then
		return 0
	fi
	fail "$name" "$* failed:"
	sed 's/^/    /' "$log" | tail -n 30
	return 1
}
journal() { ct journalctl -u preforkd.service -u preforkd.socket --no-pager -n 40 -q | sed 's/^/    /'; }

# One line through an echo service, bounded: "tcp HOST:PORT" or "unix PATH".
echo_line() {
	ct perl -MIO::Socket::INET -MIO::Socket::UNIX -MSocket -e '
		my ($kind, $addr) = @ARGV;
		$SIG{ALRM} = sub { die "$addr: no answer in 5 s\n" };
		alarm 5;
		my $s = $kind eq "unix"
			? IO::Socket::UNIX->new(Peer => $addr, Type => SOCK_STREAM)
			: IO::Socket::INET->new(PeerAddr => $addr, Timeout => 5);
		die "connect $addr: $!\n" unless $s;
		print $s "hello preforkd\n";
		shutdown($s, 1);
		my $line = <$s>;
		print defined $line ? $line : "";' "$1" "$2"
}
check_echo() {	# name, kind, address
	local got
	got=$(echo_line "$2" "$3" 2>&1)
	if [ "$got" = "hello preforkd" ]; then
		pass "$1"
	else
		fail "$1" "echo over $2 $3 answered '$got'"
	fi
}

# The master's user and its workers' (PPid the master, "preforkd: worker" in
# their title), as "master UID" and "worker UID" lines.
process_users() {
	ct sh -c 'main=$(systemctl show -p MainPID --value preforkd.service)
		[ "${main:-0}" != 0 ] || exit 1
		echo "master $(awk "/^Uid:/ { print \$2 }" /proc/$main/status)"
		for d in /proc/[0-9]*; do
			[ "$(awk "/^PPid:/ { print \$2 }" $d/status 2>/dev/null)" = "$main" ] || continue
			case $(tr "\0" " " < $d/cmdline 2>/dev/null) in
			"preforkd: worker"*) echo "worker $(awk "/^Uid:/ { print \$2 }" $d/status)" ;;
			esac
		done'
}

active_and_serving() {	# suffix of the check names
	local state status
	state=$(ct systemctl is-active preforkd.service)
	status=$(ct systemctl show -p StatusText --value preforkd.service)
	if [ "$state" = active ]; then
		pass "service-active$1 ($status)"
	else
		fail "service-active$1" "preforkd.service is $state"
		journal
	fi
	check_echo "serves-tcp$1" tcp 127.0.0.1:7007
	check_echo "serves-unix$1" unix /run/preforkd/echo.sock
}

if ct dpkg-query -W -f '${Status}' preforkd 2>/dev/null | grep -q 'installed'; then
	echo "note: preforkd is installed in the container: purging it first"
	ct apt-get purge -y -q preforkd >/dev/null 2>&1
fi

# A preforkd of "make install" would collide with the package's files (and
# its conffile would stop dpkg with a question): a fresh container is needed.
unpackaged=$(ct sh -c 'for f in /etc/preforkd/preforkd.conf /usr/local/sbin/preforkd /usr/sbin/preforkd \
	/usr/local/lib/systemd/system/preforkd.service /etc/systemd/system/preforkd.service; do
	[ -e "$f" ] && echo "$f"; done; true')
if [ -n "$unpackaged" ]; then
	fail install "the container has a preforkd of no package: $(echo $unpackaged)"
	exit 1
fi

# --- install ----------------------------------------------------------------
ct mkdir -p /var/tmp/preforkd-check
cp "$deb" "/proc/$pid1/root/var/tmp/preforkd-check/" || { fail install "cannot copy $deb in"; exit 1; }
in_deb=/var/tmp/preforkd-check/$(basename "$deb")
started=$(date +%s.%N)
if ct_ok install apt-get install -y -q "$in_deb"; then
	pass "install ($(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f s", e - s }'))"
else
	exit 1
fi

pw=$(ct getent passwd preforkd)
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
if [ -n "$pw" ] && [ "$uid" -lt 1000 ] && [ "$home" = /nonexistent ] && [ "$shell" = /usr/sbin/nologin ] &&
	[ "$(ct getent group preforkd | cut -d: -f3)" = "$gid" ]; then
	pass "user ($pw)"
else
	fail user "getent passwd preforkd: '$pw'"
fi

[ "$(ct systemctl is-enabled preforkd.service)" = enabled ] && pass service-enabled ||
	fail service-enabled "preforkd.service is $(ct systemctl is-enabled preforkd.service)"
sock="$(ct systemctl is-enabled preforkd.socket) $(ct systemctl is-active preforkd.socket)"
[ "$sock" = "disabled inactive" ] && pass "socket-left-disabled" ||
	fail socket-left-disabled "preforkd.socket is $sock"
active_and_serving ""

users=$(process_users)
workers=$(grep -c '^worker ' <<<"$users")
if grep -qx 'master 0' <<<"$users" && [ "$workers" -eq 2 ] &&
	[ -z "$(grep '^worker ' <<<"$users" | grep -vx "worker $uid")" ]; then
	pass "workers-as-preforkd (master uid 0, $workers workers uid $uid)"
else
	fail workers-as-preforkd "want master 0 and 2 workers of uid $uid, have: $(echo $users)"
fi
ct_ok preforkctl-status preforkctl status && pass preforkctl-status

if ct_ok reload systemctl reload preforkd.service; then
	pass reload
fi
active_and_serving "-after-reload"

# An upgrade's path: prerm upgrade, the unit restarted by postinst.
main_before=$(ct systemctl show -p MainPID --value preforkd.service)
ct_ok reinstall apt-get install -y -q --reinstall "$in_deb" && pass reinstall
main_after=$(ct systemctl show -p MainPID --value preforkd.service)
[ "$main_after" != "$main_before" ] && [ "$main_after" != 0 ] && pass "restarted-on-upgrade" ||
	fail restarted-on-upgrade "MainPID $main_before, then $main_after"
active_and_serving "-after-reinstall"

# --- purge ------------------------------------------------------------------
# A changed conffile goes on purge too.
ct sh -c 'echo "# changed by check-install.sh" >> /etc/preforkd/preforkd.conf'
ct_ok purge apt-get purge -y -q preforkd && pass purge
left=$(ct sh -c 'for f in /etc/preforkd /run/preforkd /lib/systemd/system/preforkd.service \
		/lib/systemd/system/preforkd.socket /usr/lib/systemd/system/preforkd.service \
		/usr/lib/systemd/system/preforkd.socket /usr/lib/sysusers.d/preforkd.conf \
		/usr/sbin/preforkd /usr/sbin/preforkctl /usr/share/doc/preforkd; do
		[ -e "$f" ] && echo "$f"; done
	find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
		/var/lib/systemd/deb-systemd-helper-masked -name "*preforkd*" 2>/dev/null
	dpkg-query -W -f "\${Status}\n" preforkd 2>/dev/null | grep -v "not-installed"
	true')
[ -z "$left" ] && pass "purge-leaves-nothing" || fail purge-leaves-nothing "left: $(echo $left)"
load=$(ct systemctl show -p LoadState --value preforkd.service)
[ "$load" = not-found ] && pass "unit-gone" || fail unit-gone "preforkd.service LoadState=$load"
procs=$(ct sh -c 'for d in /proc/[0-9]*; do case $(tr "\0" " " < $d/cmdline 2>/dev/null) in
	preforkd*|*/preforkd\ *) echo "${d#/proc/}";; esac; done')
[ -z "$procs" ] && pass "no-process-left" || fail no-process-left "pids $(echo $procs)"
got=$(echo_line tcp 127.0.0.1:7007 2>&1)
case $got in connect*) pass "port-closed" ;; *) fail port-closed "127.0.0.1:7007 answered '$got'" ;; esac
ct getent passwd preforkd >/dev/null && echo "note: the user preforkd stays after purge (as Debian leaves system users)"
ct rm -rf /var/tmp/preforkd-check

exit $failed
