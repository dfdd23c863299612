#!/bin/sh
# Run by `meson install` (meson.build): refreshes the dynamic loader's cache
# after installing libaimc to a system prefix, so programs built with
# `pkg-config --libs aimc` start without LD_LIBRARY_PATH. Nothing to do for a
# staged install (DESTDIR), without root, or where ldconfig does not search the
# libdir (then see the README: LD_LIBRARY_PATH or -Wl,-rpath).
#   install_ldconfig.sh LIBDIR
libdir="$1"
[ -n "${DESTDIR:-}" ] && exit 0
[ "$(id -u)" = 0 ] || exit 0
command -v ldconfig >/dev/null 2>&1 || PATH="$PATH:/sbin:/usr/sbin"
command -v ldconfig >/dev/null 2>&1 || exit 0
ldconfig || echo "install_ldconfig.sh: ldconfig failed; programs may need LD_LIBRARY_PATH=$libdir" >&2
exit 0
