.PHONY: demo test wheel bench bench-quick
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
	bench/run --ops 50 --handover-rounds 50 --peer-handover-rounds 2 --many 100 --hold-seconds 10 --cold-runs 3
