# Entry points for people and CI. The real build is CMake (see CMakeLists.txt).
BUILD ?= build
JOBS ?= 2

.PHONY: all deps build check unit integration vm fuzz demo demo-generic clean

all: build

deps:
	./scripts/install-deps

# ASan+UBSan build: what the tests run against.
build: deps
	cmake -S . -B $(BUILD) -DMACHINE_SANITIZE=ON
	cmake --build $(BUILD) -j$(JOBS)

# Every test: unit, integration (real sshd, registry, ... in network namespaces) and vm
# (machine-os under qemu TCG, libvirtd in its own namespaces), then the libFuzzer targets for a
# bounded time (security case 30).
check: build
	cd $(BUILD) && ctest --output-on-failure --timeout 1200 -j1
	$(MAKE) fuzz

# clang build of tests/fuzz (coverage + ASan/UBSan), each target run FUZZ_SECONDS.
FUZZ_BUILD ?= $(BUILD)-fuzz
FUZZ_SECONDS ?= 20
fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DMACHINE_FUZZ=ON -DMACHINE_FUZZ_SECONDS=$(FUZZ_SECONDS)
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_image_parsers fuzz_layer seeds_layer fuzz_dns seeds_dns
	cd $(FUZZ_BUILD) && ctest --output-on-failure -L fuzz

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

integration: build
	cd $(BUILD) && ctest --output-on-failure -L integration

vm: build
	cd $(BUILD) && ctest --output-on-failure -L vm

demo: build
	./scripts/demo $(BUILD)

demo-generic: build
	./scripts/demo-generic $(BUILD)

clean:
	rm -rf $(BUILD)
