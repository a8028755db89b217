.PHONY: demo test wheel bench bench-quick sim
demo:
	scripts/demo
test:
	scripts/test
wheel:
	scripts/build-wheel
bench:
	bench/run
# A few minutes instead of ~15: fewer operations, 100 locks for 10 s (docs/benchmarks.md says so).
bench-quick:
	bench/run --ops 50 --handover-rounds 50 --peer-handover-rounds 2 --many 100 --hold-seconds 10 --many-runs 1 --cycle-runs 1 --cold-runs 3
# The deterministic simulation (core/tests/sim.rs) over SEEDS seeds from SEED_START, release build.
SEEDS ?= 10000
SEED_START ?= 0
sim:
	bash -c 'source scripts/env.sh && SIM_SEEDS=$(SEEDS) SIM_SEED_START=$(SEED_START) cargo test -p dynalease --release --test sim -- --include-ignored --nocapture seeds'
