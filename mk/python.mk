# python: build, test and demo targets (filled in by the python binding work).
.PHONY: build-python test-python demo-python
build-python:
	@echo "build-python: not yet"
test-python:
	@echo "test-python: not yet"
demo-python:
	@echo "demo-python: not yet"
