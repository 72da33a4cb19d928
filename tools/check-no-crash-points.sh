#!/usr/bin/env bash
# Fails if a function binary carries crash points, the test-only aborts of the `crash-points`
# feature of kb-autosync-aws (crates/aws/src/crash_point.rs), which a release package must
# never enable.
#
#   tools/check-no-crash-points.sh target/lambda/*/bootstrap
#
# The names it looks for come from the source, so a new crash point is covered without editing
# this script: every `crash_point!("NAME")` under functions/ and crates/, and the environment
# variables the feature reads (the `*_VAR` constants of crash_point.rs). A binary built with the
# feature holds them as string literals; one built without it holds none of them.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "$#" -eq 0 ]; then
    echo "usage: $0 BINARY..." >&2
    exit 2
fi

names="$(
    {
        grep -rhoE --include='*.rs' 'crash_point!\("[^"]+"\)' "$root/functions" "$root/crates" |
            sed -E 's/^crash_point!\("([^"]+)"\)$/\1/'
        grep -hoE 'pub const [A-Z_]+_VAR: &str = "[^"]+"' "$root/crates/aws/src/crash_point.rs" |
            sed -E 's/.*"([^"]+)"$/\1/'
    } | sort -u
)"
# An empty list would pass every binary: the patterns above no longer match the source.
if ! grep -q '/' <<<"$names" || ! grep -q '^KB_AUTOSYNC_CRASH_POINTS$' <<<"$names"; then
    echo "error: $0 found no crash point names or not KB_AUTOSYNC_CRASH_POINTS in the source; update its patterns" >&2
    exit 2
fi

failed=0
for binary in "$@"; do
    # target/lambda/NAME/bootstrap -> NAME; target/release/NAME -> NAME.
    if [ "$(basename "$binary")" = bootstrap ]; then
        function="$(basename "$(dirname "$binary")")"
    else
        function="$(basename "$binary")"
    fi
    if [ ! -f "$binary" ]; then
        echo "error: $function: $binary does not exist" >&2
        failed=1
        continue
    fi
    found="$(LC_ALL=C grep -aoF -- "$names" "$binary" | sort -u || true)"
    if [ -n "$found" ]; then
        while IFS= read -r name; do
            echo "error: $function ($binary) contains \"$name\", a name of the crash-points feature of kb-autosync-aws: release packages must be built without it" >&2
        done <<<"$found"
        failed=1
    else
        echo "    $function: no crash points"
    fi
done
exit "$failed"
