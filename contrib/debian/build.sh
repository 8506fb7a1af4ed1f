#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# contrib/debian/build.sh - builds preforkd_VERSION-N_ARCH.deb: the source
# (a "make dist" tarball, or this checkout's files) is unpacked in a temporary
# directory, contrib/debian/ becomes its debian/, and dpkg-buildpackage -us -uc
# -b runs there. The .deb, its -dbgsym .deb, .buildinfo, .changes and the
# build log land in OUTDIR; the temporary tree is removed.
#
#   contrib/debian/build.sh [-o OUTDIR] [--install-deps] [TARBALL]
#
#   -o OUTDIR       where the results go (default: ./deb)
#   --install-deps  apt-get build-dep the tree first (as root)
#   TARBALL         preforkd-VERSION.tar.gz from "make dist"; without it, the
#                   files git knows in this checkout (tracked or not ignored,
#                   as they are in the working tree)
#
# DEB_BUILD_OPTIONS is honoured (nocheck skips the test suite and, through the
# nocheck build profile, its build dependencies); parallel= defaults to nproc.
# The upstream part of debian/changelog's version must be configure.ac's
# AC_INIT version. Prints the path of the .deb on its last line.
set -euo pipefail

usage() { awk 'NR >= 3 && /^#/ { sub(/^# ?/, ""); print; next } NR >= 3 { exit }' "$0"; }

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
outdir=$PWD/deb
install_deps=no
tarball=
while [ $# -gt 0 ]; do
	case $1 in
	-o) outdir=$2; shift 2 ;;
	--install-deps) install_deps=yes; shift ;;
	-h|--help) usage; exit 0 ;;
	-*) echo "build.sh: unknown option $1" >&2; exit 2 ;;
	*) tarball=$1; shift ;;
	esac
done
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
[ -z "$tarball" ] || tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")

work=$(mktemp -d "${TMPDIR:-/tmp}/preforkd-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Run as root, the tests start app workers as nobody from the build tree.
chmod 755 "$work"

if [ -n "$tarball" ]; then
	tar -C "$work" -xzf "$tarball"
	tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'preforkd-*' | head -n 1)
	[ -n "$tree" ] || { echo "build.sh: $tarball holds no preforkd-VERSION/ directory" >&2; exit 1; }
else
	git -C "$srcdir" rev-parse --git-dir >/dev/null 2>&1 ||
		{ echo "build.sh: $srcdir is not a git checkout: give a make dist tarball" >&2; exit 1; }
	tree=$work/preforkd
	mkdir "$tree"
	(cd "$srcdir" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		tar --null -T - -cf -) | tar -C "$tree" -xf -
fi

version=$(sed -n 's/^AC_INIT(\[preforkd\], \[\([^]]*\)\].*/\1/p' "$tree/configure.ac")
[ -n "$version" ] || { echo "build.sh: no AC_INIT version in configure.ac" >&2; exit 1; }
cp -a "$tree/contrib/debian" "$tree/debian"
rm -f "$tree"/debian/*.sh
debversion=$(cd "$tree" && dpkg-parsechangelog -SVersion)
[ "${debversion%-*}" = "$version" ] || {
	echo "build.sh: debian/changelog is at $debversion, configure.ac at $version:" \
	     "add an entry (dch -v $version-1)" >&2
	exit 1
}

case " ${DEB_BUILD_OPTIONS:-} " in
*" parallel="*) ;;
*) DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }parallel=$(nproc)" ;;
esac
case " $DEB_BUILD_OPTIONS " in
*" nocheck "*)
	case " ${DEB_BUILD_PROFILES:-} " in *" nocheck "*) ;; *)
		DEB_BUILD_PROFILES="${DEB_BUILD_PROFILES:+$DEB_BUILD_PROFILES }nocheck" ;; esac ;;
esac
export DEB_BUILD_OPTIONS
[ -z "${DEB_BUILD_PROFILES:-}" ] || export DEB_BUILD_PROFILES

if [ "$install_deps" = yes ]; then
	DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q \
		${DEB_BUILD_PROFILES:+-P "${DEB_BUILD_PROFILES// /,}"} "$tree" >"$outdir/build-dep.log" 2>&1 ||
		{ tail -n 40 "$outdir/build-dep.log"; echo "build.sh: apt-get build-dep failed" >&2; exit 1; }
fi

echo "== dpkg-buildpackage -us -uc -b of preforkd $debversion (DEB_BUILD_OPTIONS=$DEB_BUILD_OPTIONS${DEB_BUILD_PROFILES:+, profiles $DEB_BUILD_PROFILES})"
log=$outdir/build.log
(cd "$tree" && dpkg-buildpackage -us -uc -b) >"$log" 2>&1 ||
	{ tail -n 100 "$log"; echo "build.sh: dpkg-buildpackage failed, log in $log" >&2; exit 1; }
grep -h -E '^[0-9]+%: Checks:|^# (TOTAL|PASS|FAIL|ERROR):' "$log" || true

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
for f in "$work"/preforkd*_"$debversion"_*; do
	mv -f "$f" "$outdir/"
done
deb=$outdir/preforkd_${debversion}_$arch.deb
[ -f "$deb" ] || { echo "build.sh: no $deb was built" >&2; exit 1; }
echo "$deb"
