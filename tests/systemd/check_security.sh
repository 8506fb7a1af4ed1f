#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# check_security.sh - records "systemd-analyze security preforkd.service"
# (the unit's sandboxing as systemd scores it) in the log. Not judged: it
# fails only when systemd-analyze cannot score the unit.
. "$(dirname "$0")/lib.sh"

fresh
systemd-analyze security --no-pager preforkd.service > "$tmp/security" 2>&1 ||
	true	# its exit status is the score's
sed 's/^/   /' "$tmp/security"
score=$(sed -n 's/.*Overall exposure level for preforkd.service: *//p' "$tmp/security")
[ -n "$score" ] || fail "systemd-analyze security gave no exposure level"
pass "exposure level $score (recorded, not judged)"
