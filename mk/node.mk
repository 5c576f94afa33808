# node: build, test and demo targets (filled in by the node binding work).
.PHONY: build-node test-node demo-node
build-node:
	@echo "build-node: not yet"
test-node:
	@echo "test-node: not yet"
demo-node:
	@echo "demo-node: not yet"
