#!/bin/sh
# bridge_bench.sh - `ringpipe write`/`ringpipe read` against cat through a
# kernel FIFO, the figure the README quotes (issue 5).
#
#   sh scripts/bridge_bench.sh [RINGPIPE] [ROUNDS]
#
# Each round copies 1 GiB both ways, interleaved, in two set-ups:
#   file:  ringpipe write q <file     | ringpipe read q >/dev/null
#          cat file >fifo             | cat fifo >/dev/null
#   feed:  head -c 1G /dev/zero | ringpipe write q ...   (a third process)
#          head -c 1G /dev/zero | cat >fifo ...
# and prints the median MiB/s of each with min-max, and the median of the
# per-round ratios (ringpipe / cat).
set -eu
RP=${1:-build/ringpipe}
ROUNDS=${2:-5}
D=$(mktemp -d "${TMPDIR:-/tmp}/rp_bridge.XXXXXX")
trap '"$RP" rm "$D/q" 2>/dev/null || :; rm -rf "$D"' EXIT
"$RP" mkfifo -s 1M "$D/q"
mkfifo "$D/k"
head -c 1G /dev/zero >"$D/big"

now() { date +%s.%N; }
rate() { awk -v a="$1" -v b="$2" 'BEGIN { print 1024 / (b - a) }'; }

run() {   # run MODE MECH: prints MiB/s
	t0=$(now)
	case "$1.$2" in
	file.rp)   "$RP" write "$D/q" <"$D/big" & "$RP" read "$D/q" >/dev/null ;;
	file.cat)  cat "$D/big" >"$D/k" & cat "$D/k" >/dev/null ;;
	feed.rp)   head -c 1G /dev/zero | "$RP" write "$D/q" & "$RP" read "$D/q" >/dev/null ;;
	feed.cat)  head -c 1G /dev/zero | cat >"$D/k" & cat "$D/k" >/dev/null ;;
	esac
	wait
	rate "$t0" "$(now)"
}

stats() {   # median and min-max of the numbers on stdin
	sort -g | awk '{v[NR] = $1} END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.0f (%.0f-%.0f)", m, v[1], v[NR] }'
}

for mode in file feed; do
	: >"$D/rp"; : >"$D/cat"; : >"$D/ratio"
	for i in $(seq "$ROUNDS"); do
		a=$(run $mode rp); b=$(run $mode cat)
		echo "$a" >>"$D/rp"; echo "$b" >>"$D/cat"
		awk -v a="$a" -v b="$b" 'BEGIN { print a / b }' >>"$D/ratio"
	done
	printf '%s: ringpipe %s MiB/s, cat %s MiB/s, ratio median %s\n' "$mode" \
		"$(stats <"$D/rp")" "$(stats <"$D/cat")" \
		"$(sort -g "$D/ratio" | awk '{v[NR] = $1} END {
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.2f", m }')"
done
echo "($ROUNDS rounds of 1 GiB each, interleaved; $(nproc) CPUs)"
