#!/bin/sh
# The shared library as a program loads it.  Each case_NAME function is one
# ctest case (tests/CMakeLists.txt).  RP_LIB is the built libringpipe.so.
set -eu
: "${RP_LIB:?set RP_LIB to the built shared library}"
fail() { echo "FAIL: $*" >&2; exit 1; }

# Every thread-local is initial-exec (RP_TLS_FAST in src/internal.h): one
# left to the default model costs a call of __tls_get_addr at each access,
# which made a 64-byte write and read half again as slow through the .so.
case_thread_locals_need_no_tls_get_addr_call() {
	command -v objdump >/dev/null || fail "objdump (binutils) is needed"
	n=$(objdump -d "$RP_LIB" | grep -c '__tls_get_addr' || true)
	[ "$n" = 0 ] || fail "$n references to __tls_get_addr in $RP_LIB"
}

# That block comes from the small reserve glibc keeps for dlopen (about
# 1.6 KiB in a fresh python3 here): 408 bytes let four copies of the
# library load there, 232 seven.  Keep it under 256.
case_static_tls_block_is_at_most_256_bytes() {
	command -v readelf >/dev/null || fail "readelf (binutils) is needed"
	size=$(readelf -lW "$RP_LIB" | awk '$1 == "TLS" { print $6 }')
	[ -n "$size" ] || fail "no TLS segment in $RP_LIB"
	[ $((size)) -le 256 ] || fail "static TLS block of $((size)) bytes"
}

# Its static TLS comes from the reserve glibc keeps for dlopen: a fresh
# process can load it that way and call it.
case_loads_with_dlopen_and_makes_a_pipe() {
	python3 - "$RP_LIB" <<'PY' || fail "dlopen of $RP_LIB"
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
ends = (ctypes.c_void_p * 2)()
assert lib.rp_pipe(ends) == 0
lib.rp_write.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
lib.rp_read.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
lib.rp_write.restype = lib.rp_read.restype = ctypes.c_ssize_t
lib.rp_close.argtypes = [ctypes.c_void_p]
assert lib.rp_write(ends[1], b"hello", 5) == 5
buf = ctypes.create_string_buffer(8)
assert lib.rp_read(ends[0], buf, 8) == 5 and buf.raw[:5] == b"hello"
assert lib.rp_close(ends[1]) == 0 and lib.rp_read(ends[0], buf, 8) == 0
assert lib.rp_close(ends[0]) == 0
PY
}

[ $# -eq 1 ] || { echo "usage: $0 CASE" >&2; exit 2; }
"case_$1"
