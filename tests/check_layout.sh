#!/bin/sh
# SPDX-License-Identifier: ISC
# check_layout.sh - the direction of dependencies between the source folders:
# worker/ and handlers/ never include master/ (a worker is forked from the
# master and knows nothing of it), common/ includes nothing outside itself,
# and ctl/ (preforkctl, a process of its own) nothing but common/.
# Prints every include that breaks the rule; fails if there is one.
src="${srcdir:-.}/src"
bad=0
check() {	# folder, pattern of folders it must not include
	for f in "$src/$1"/*.c "$src/$1"/*.h; do
		[ -e "$f" ] || continue
		grep -nE "^#include \"($2)/" "$f" | while IFS= read -r line; do
			echo "${f#"$src"/}:$line"
		done
	done
}
out=$( { check worker master; check handlers master; check common 'conf|master|worker|handlers'
	check ctl 'conf|master|worker|handlers'; } )
if [ -n "$out" ]; then
	echo "includes against the layout (worker/, handlers/ -/-> master/; common/ -/-> anything):"
	echo "$out"
	bad=1
fi
# Every source file sits in a folder but main.c.
for f in "$src"/*.c "$src"/*.h; do
	case "${f##*/}" in main.c|'*.c'|'*.h') ;; *) echo "${f#"$src"/}: not in a folder"; bad=1 ;; esac
done
# Every source file starts with its licence.
for f in $(cd "${srcdir:-.}" && find src tests contrib -name '*.[ch]' -o -name '*.def' | sort); do
	head -n 1 "${srcdir:-.}/$f" | grep -q 'SPDX-License-Identifier: ISC' ||
		{ echo "$f: no SPDX-License-Identifier line at the top"; bad=1; }
done
# Every source file is in Makefile.am, or a tarball would lack it.
for f in $(cd "${srcdir:-.}" && find src -name '*.[ch]' | sort); do
	grep -q "$f" "${srcdir:-.}/Makefile.am" || { echo "$f: not in Makefile.am"; bad=1; }
done
exit $bad
