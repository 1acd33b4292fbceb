#!/usr/bin/env bash
# Builds the libFuzzer target for the zone/config lexer and parser and runs it.
#   Tests/Fuzz/run.sh [SECONDS]     (default 60; the corpus in Tests/Fuzz/corpus/lexer grows as it runs)
# New crashers land in Tests/Fuzz/crashes/; turn each into a fixture under Tests/Fixtures/zones/bad.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
export FRONTDOOR_FUZZ=1
# -sanitize=fuzzer on every module, so libFuzzer sees coverage in ZoneModel and ZoneFile, not only the harness.
swift build -c debug --scratch-path .build-fuzz --product LexerFuzzer -Xswiftc -sanitize=fuzzer,address >/dev/null
mkdir -p Tests/Fuzz/crashes Tests/Fuzz/corpus/lexer
# Seed the corpus with every zone the project ships or tests.
for f in zones/*.zone zones/*.conf Tests/Fixtures/zones/ok/* Tests/Fixtures/zones/bad/* Tests/Fixtures/conf/*; do
    cp -n "$f" "Tests/Fuzz/corpus/lexer/seed-$(basename "$f")" 2>/dev/null || true
done
exec .build-fuzz/debug/LexerFuzzer Tests/Fuzz/corpus/lexer \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=Tests/Fuzz/crashes/ -print_final_stats=1
