#!/usr/bin/env python3
"""Write the seed corpus for fuzz/fuzz_frames.c into fuzz/corpus/frames/.

A message travels as chunks (src/frame.h), each a 16-byte little-endian
header followed by its payload:

    uint32 tag = 0x52504d00 | flags    (FIRST = 1, LAST = 2)
    uint32 len = payload bytes in this chunk
    uint64 pos = FIRST: the message's total length; else: offset in message

Run from anywhere: python3 fuzz/make_corpus.py
"""
import os
import struct

MAGIC = 0x52504D00
FIRST, LAST = 1, 2


def chunk(flags, payload=b"", pos=None, length=None):
    """One chunk; pos defaults to len(payload) (a whole single-chunk message)."""
    if pos is None:
        pos = len(payload)
    if length is None:
        length = len(payload)
    return struct.pack("<IIQ", MAGIC | flags, length, pos) + payload


def message(data, chunk_size):
    """A message cut into chunks of at most chunk_size bytes, as rp_send does."""
    if not data:
        return chunk(FIRST | LAST, b"", 0)
    out, off = b"", 0
    while off < len(data):
        part = data[off:off + chunk_size]
        flags = (FIRST if off == 0 else 0) | (LAST if off + len(part) == len(data) else 0)
        out += chunk(flags, part, len(data) if off == 0 else off)
        off += len(part)
    return out


SEEDS = {
    # well-formed
    "single_chunk": message(b"Hello", 16368),
    "multi_chunk": message(bytes(range(256)) * 4, 100),
    "zero_length": message(b"", 16368),
    "primer_three": message(b"Hello", 99) + message(b"World", 99) + message(b"Done", 99),
    "mixed_sizes": message(b"", 8) + message(b"x" * 40, 8) + message(b"abc", 8)
                   + message(b"", 8),
    # malformed or foreign
    "truncated_header": chunk(FIRST | LAST, b"Hello")[:10],
    "truncated_payload": chunk(FIRST | LAST, b"Hello")[:18],
    "bad_magic": struct.pack("<IIQ", 0xDEADBE03, 5, 5) + b"Hello",
    "bad_flags": struct.pack("<IIQ", MAGIC | 0x10, 5, 5) + b"Hello",
    "first_last_len_mismatch": chunk(FIRST | LAST, b"Hello", pos=9),
    "cut_then_whole": chunk(FIRST, b"0123456789", pos=100) + message(b"after", 64),
    "orphan_continuation": chunk(LAST, b"xyz", pos=7) + message(b"one", 64),
    "wrong_offset": chunk(FIRST, b"AB", pos=4) + chunk(0, b"zz", pos=3)
                    + chunk(LAST, b"CD", pos=2),
    "last_short_of_total": chunk(FIRST, b"ab", pos=10) + chunk(LAST, b"cd", pos=2),
    "over_limit_claim": chunk(FIRST, b"", pos=1 << 40) + chunk(0, b"12345", pos=0)
                        + message(b"three", 64),
    "huge_total": chunk(FIRST, b"", pos=1 << 63),
    "claims_2mib_then_whole": chunk(FIRST, b"a" * 100, pos=2 << 20)
                              + chunk(0, b"b" * 100, pos=100) + message(b"four", 64),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "corpus", "frames")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {out}")


if __name__ == "__main__":
    main()
