# c: build, test and demo targets (filled in by the c binding work).
.PHONY: build-c test-c demo-c
build-c:
	@echo "build-c: not yet"
test-c:
	@echo "test-c: not yet"
demo-c:
	@echo "demo-c: not yet"
