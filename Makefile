.PHONY: demo test wheel
demo:
	scripts/demo
test:
	scripts/test
wheel:
	scripts/build-wheel
