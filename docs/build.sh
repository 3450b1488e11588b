#!/usr/bin/env bash
# Builds the user guide (docs/src/) into docs/book/ (ignored by git) with
# mdBook, installing the pinned mdBook first when it is missing.
#
#   docs/build.sh
#
# Debian has no mdbook package, so it comes from crates.io, built without
# its `serve` and `watch` features (a preview web server and a file watcher:
# not needed to build, and the bulk of its dependencies). The Rust examples
# in the book are compiled by `cargo test --doc`, not here.
set -euo pipefail

MDBOOK_VERSION=0.5.4

cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if [ "$(mdbook --version 2>/dev/null)" != "mdbook v$MDBOOK_VERSION" ]; then
    echo "docs/build.sh: installing mdbook $MDBOOK_VERSION from crates.io (a few minutes on 2 cores)" >&2
    cargo install mdbook --version "$MDBOOK_VERSION" --locked --no-default-features --features search
fi

mdbook build docs
echo "docs/build.sh: the book is in docs/book/index.html" >&2
