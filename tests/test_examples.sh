#!/bin/sh
# The programs in examples/, run as a user would run them: each checks its
# own result and exits 0 only if the pipe behaved as its comment says; these
# cases also check what they print.  Each case_NAME function is one ctest
# case (tests/CMakeLists.txt).  RP_EXAMPLES is the directory of the binaries.
set -eu
: "${RP_EXAMPLES:?set RP_EXAMPLES to the built examples directory}"
T=$(mktemp -d /tmp/rp_examples.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Run example $1; its output goes to $T/out; a non-zero status fails.
run() {
	"$RP_EXAMPLES/$1" >"$T/out" 2>&1 || fail "$1 exited $?: $(cat "$T/out")"
}

# The primer's Pipe() program: the same six lines as the Python prints,
# each side's in order (the two processes' lines may interleave), then EOF
# ends the receiver and the program exits 0.
case_sender_receiver_prints_the_primers_lines() {
	run sender_receiver
	[ "$(grep -c . "$T/out")" = 6 ] || fail "not six lines: $(cat "$T/out")"
	[ "$(grep '^Sending: ' "$T/out" | tr '\n' ' ')" = \
	  "Sending: Hello Sending: World Sending: Done " ] || fail "$(cat "$T/out")"
	[ "$(grep '^Received: ' "$T/out" | tr '\n' ' ')" = \
	  "Received: Hello Received: World Received: Done " ] || fail "$(cat "$T/out")"
}

case_parent_child_delivers_once_then_eof() {
	run parent_child
	grep -q 'read 40 bytes: "hello from the parent through a ringpipe"' "$T/out" ||
		fail "$(cat "$T/out")"
	grep -q "child exited 0" "$T/out" || fail "$(cat "$T/out")"
}

case_read_once_consumes_what_it_returns() {
	run read_once
	grep -q '4 bytes "0123"' "$T/out" && grep -q '6 bytes "456789"' "$T/out" ||
		fail "$(cat "$T/out")"
}

case_sigpipe_kills_a_default_writer_and_gives_epipe_when_ignored() {
	run sigpipe
	grep -q "killed by signal 13 " "$T/out" || fail "$(cat "$T/out")"
	[ "$(grep -c 'rp_write returned -1, errno 32' "$T/out")" = 2 ] || fail "$(cat "$T/out")"
}

case_wrong_end_is_ebadf() {
	run wrong_end
	[ "$(grep -c 'Bad file descriptor' "$T/out")" = 3 ] || fail "$(cat "$T/out")"
}

case_named_pipe_meets_by_path_and_is_removed() {
	run named_pipe
	path=$(sed -n 's/^made named pipe //p' "$T/out")
	[ -n "$path" ] && [ ! -e "$path" ] || fail "path '$path' left: $(cat "$T/out")"
	grep -q "read 33 bytes until EOF" "$T/out" || fail "$(cat "$T/out")"
}

# Its own verdict includes how long the writer was blocked, which a loaded
# machine can shorten (the reader may drain before the write begins): this
# case checks the rest, not the timing.
case_blocked_writer_waits_for_room() {
	"$RP_EXAMPLES/blocked_writer" >"$T/out" 2>&1 || :
	grep -q "non-blocking write of 1 byte: -1 (Resource temporarily unavailable)" "$T/out" ||
		fail "$(cat "$T/out")"
	grep -q "write returned 12288 after" "$T/out" || fail "$(cat "$T/out")"
	grep -q "reader: EOF after 16384 bytes" "$T/out" || fail "$(cat "$T/out")"
}

[ $# -eq 1 ] || { echo "usage: $0 CASE" >&2; exit 2; }
"case_$1"
