# Recipes for hcmon developers. The README's commands need no `just`: they call deploy/dev.sh.

# Build, then run a collector with a local agent.
run:
    ./deploy/dev.sh run

# Every test, unit and multi-process.
test:
    ./deploy/dev.sh test

# What CI runs: fmt, clippy -D warnings, tests.
ci:
    ./deploy/dev.sh ci

fmt:
    cargo fmt --all
