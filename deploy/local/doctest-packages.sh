#!/usr/bin/env bash
# Print the workspace packages whose library sources hold a doctest (a code block in a doc
# comment that is not marked text, sh, console or ignore), one name per line. `make test`
# runs rustdoc only over these: over every crate it took about two minutes, nearly all of it
# compiling crates without a single example.
set -euo pipefail
cd "$(dirname "$0")/../.."
find . -path ./target -prune -o -path '*/src/*.rs' -print |
  while read -r file; do
    # Opening fences alternate with closing ones; an opening fence is a doctest unless
    # tagged as something rustdoc does not compile.
    awk '/^[[:space:]]*\/\/[\/!] ```/ {
           open = !open
           if (open) { tag = $0; sub(/.*```/, "", tag)
             if (tag !~ /(^|,)(text|sh|console|ignore|json|toml|yaml|sql|proto)(,|$)/) { found = 1; exit } } }
         END { exit !found }' "$file" || continue
    dir=$(dirname "$file")
    while [ ! -f "$dir/Cargo.toml" ]; do dir=$(dirname "$dir"); done
    sed -n 's/^name = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1
  done | sort -u
