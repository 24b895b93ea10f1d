# Thin wrapper: the real build is meson + ninja. See README.md.
#   make demo    install deps, build, run the built-in quickstart lab
#   make check   install deps, run every test (unit, ASan+UBSan, fuzz)
BUILD        ?= build
FUZZ_SECONDS ?= 10

.PHONY: all deps build demo check fuzz fuzz-long bench format clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@bash scripts/build.sh $(BUILD)

demo: build
	@bash scripts/demo.sh $(BUILD)

check: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/check.sh

fuzz: deps
	@bash scripts/fuzz.sh $(FUZZ_SECONDS)

fuzz-long: deps
	@bash scripts/fuzz.sh 1800

bench: build
	@bash scripts/bench.sh $(BUILD)

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf build build-asan build-fuzz
