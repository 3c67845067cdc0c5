#!/bin/sh
# Make sure the Debian packages `make test` and `make demo` need beyond the
# stock toolchain are there: Python headers (the Python package), clang
# with libFuzzer (the fuzz smoke run), valgrind (the memcheck run).
# Installs them when run as root,
# otherwise says how.
set -eu
need=""
py=/usr/bin/python3
[ -x "$py" ] || py=python3
if ! "$py" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
	need="$need python3-dev"
fi
if ! command -v clang >/dev/null 2>&1; then
	need="$need clang libclang-rt-dev"
else
	rt=$(clang -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a
	if [ "$(uname -m)" = x86_64 ] && [ ! -e "$rt" ]; then
		major=$(clang -dumpversion | cut -d. -f1)
		need="$need libclang-rt-$major-dev"
	fi
fi
command -v valgrind >/dev/null 2>&1 || need="$need valgrind"
[ -z "$need" ] && exit 0
echo "ringpipe: needs Debian packages:$need"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need
else
	echo "ringpipe: run: sudo apt-get install$need" >&2
	exit 1
fi
