.PHONY: demo test wheel bench
demo:
	scripts/demo
test:
	scripts/test
wheel:
	scripts/build-wheel
bench:
	bench/run
