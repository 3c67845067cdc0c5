# fuzz/fuzz.mk - the frame decoder's libFuzzer target.  Include it from the
# top-level Makefile (`include fuzz/fuzz.mk`) to get:
#
#   make fuzz          build build/fuzz/fuzz_frames
#   make fuzz-smoke    build it and fuzz for FUZZ_TIME seconds (default 20)
#
# Needs clang with libFuzzer (Debian/Ubuntu: libclang_rt.fuzzer-x86_64.a is
# in libclang-rt-14-dev, pulled in by clang-14).  New inputs go to
# build/fuzz/corpus; the seeds in fuzz/corpus/frames are only read.
# Regenerate the seeds with: python3 fuzz/make_corpus.py

FUZZ_CC      ?= clang
FUZZ_TIME    ?= 20
FUZZ_FLAGS   ?= -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_RUNOPTS ?= -timeout=10 -rss_limit_mb=2048 -dict=fuzz/frames.dict -print_final_stats=1

.PHONY: fuzz fuzz-smoke

build/fuzz/fuzz_frames: fuzz/fuzz_frames.c $(wildcard src/*.c src/*.h include/*.h)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -Iinclude -Isrc src/*.c fuzz/fuzz_frames.c -lpthread -o $@

build/fuzz/fuzz_header: fuzz/fuzz_header.c $(wildcard src/*.c src/*.h include/*.h)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -Iinclude -Isrc src/*.c fuzz/fuzz_header.c -lpthread -o $@

fuzz: build/fuzz/fuzz_frames build/fuzz/fuzz_header

fuzz-smoke: build/fuzz/fuzz_frames build/fuzz/fuzz_header
	@mkdir -p build/fuzz/corpus build/fuzz/corpus-header
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  build/fuzz/fuzz_header -max_total_time=$(FUZZ_TIME) -timeout=10 -print_final_stats=1 \
	  -artifact_prefix=build/fuzz/ build/fuzz/corpus-header fuzz/corpus/header
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  build/fuzz/fuzz_frames -max_total_time=$(FUZZ_TIME) $(FUZZ_RUNOPTS) \
	  -artifact_prefix=build/fuzz/ build/fuzz/corpus fuzz/corpus/frames
