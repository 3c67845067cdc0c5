#!/bin/sh
# make demo: the primer's program over ringpipe, a named pipe seen by
# `ringpipe ls` and `ringpipe stat` while two processes use it, and the
# quick benchmark table.
set -eu
B=${1:-build}
RP="$B/ringpipe"

echo "== 1. The primer's sender/receiver, over a ringpipe connection =="
"$B/examples/sender_receiver"

echo
echo "== 2. A named pipe between two processes =="
dir=$(mktemp -d /tmp/ringpipe-demo.XXXXXX)
q="$dir/q"
trap '"$RP" rm "$q" 2>/dev/null || :; rm -rf "$dir"' EXIT
"$RP" mkfifo -s 1M "$q"
echo "\$ ringpipe mkfifo -s 1M $q"
echo "\$ (producer) | ringpipe write $q &    # 64 MiB, at a gentle pace"
echo "\$ ringpipe read $q | (consumer) &"
( i=0; while [ $i -lt 8 ]; do head -c 8388608 /dev/zero; sleep 0.25; i=$((i+1)); done ) |
	"$RP" write "$q" &
"$RP" read "$q" | sha256sum >"$dir/sum" &
sleep 1
echo "\$ ringpipe ls $q"
"$RP" ls "$q"
echo "\$ ringpipe stat $q"
"$RP" stat "$q"
wait
echo "consumer's checksum: $(cut -c1-16 "$dir/sum")...  (64 MiB of zeros: $(head -c 67108864 /dev/zero | sha256sum | cut -c1-16)...)"

echo
echo "== 3. ringpipe bench --quick: ringpipe against kernel pipes, same run =="
"$RP" bench --quick
