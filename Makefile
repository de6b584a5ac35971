# Entry points for people and CI. The real build is CMake (see CMakeLists.txt).
BUILD ?= build
JOBS ?= 2

.PHONY: all deps build check unit integration demo clean

all: build

deps:
	./scripts/install-deps

# ASan+UBSan build: what the tests run against.
build: deps
	cmake -S . -B $(BUILD) -DMACHINE_SANITIZE=ON
	cmake --build $(BUILD) -j$(JOBS)

# Every test: unit, then integration (real sshd, registry, ... in network namespaces).
check: build
	cd $(BUILD) && ctest --output-on-failure --timeout 1200 -j1

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

integration: build
	cd $(BUILD) && ctest --output-on-failure -L integration

demo: build
	./scripts/demo $(BUILD)

clean:
	rm -rf $(BUILD)
