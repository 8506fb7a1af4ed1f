#!/bin/sh
# SPDX-License-Identifier: ISC
# check_fuzz_corpus.sh - every fuzz target run over its corpus (seeds, and the crashes fuzzing once found).
set -e
srcdir=${srcdir:-.}
for t in conf address json http control notify proxy; do
	./tests/fuzz/replay_$t "$srcdir/tests/fuzz/corpus/$t"
done
