# Quick start on a fresh Debian 12 machine, as root:
#   make run    install what is missing, build, start relu-server on its defaults
#   make test   install what is missing, build, run every test through ctest,
#               then the whole suite again under ASan+UBSan (test-sanitizers)
#               and each fuzz target for FUZZ_SECONDS (test-fuzz);
#               `make test SANITIZERS=0 FUZZ=0` runs only the first part
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CTEST_ARGS ?=
ASAN_BUILD_DIR ?= build-asan
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
SANITIZERS ?= 1
FUZZ ?= 1

# The ASan+UBSan run: every test except these, each for a reason:
#  relu_deploy_docker_image  builds the Docker image from the sources (its own
#                            optimized binaries, not these) and takes minutes;
#  client.consumer_*         links an outside project, compiled without
#                            -fsanitize, against the instrumented library;
#  relu_batching_tsan        is its own ThreadSanitizer build (tests/batching/tsan),
#                            already run by the plain suite;
#  reliability.overload_short and reliability.hostile_short check memory
#                            against a bound; ASan's shadow memory and
#                            quarantine make RSS meaningless.
#  bench.*                   benchmark harnesses: their figures mean nothing
#                            under ASan, and the plain suite runs them.
ASAN_CTEST_EXCLUDE ?= ^(relu_deploy_docker_image|client\.consumer_.*|relu_batching_tsan|reliability\.overload_short|reliability\.hostile_short|bench\..*)$$
# LeakSanitizer runs with no suppressions: the suite ran clean without any
# (Debian's uninstrumented libraries' singletons stay reachable), so any leak
# report fails its test.
SANITIZER_ENV = ASAN_OPTIONS=detect_leaks=1:strict_init_order=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: all deps configure build run test test-sanitizers test-fuzz bench format clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/server/relu-server $(ARGS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)
ifeq ($(SANITIZERS),1)
	@$(MAKE) --no-print-directory test-sanitizers
endif
ifeq ($(FUZZ),1)
	@$(MAKE) --no-print-directory test-fuzz
endif

# The whole project built with AddressSanitizer + UndefinedBehaviorSanitizer
# (cmake/Sanitizers.cmake) and the suite run there. The sanitizer options
# are set for the build too: gtest_discover_tests runs test binaries then.
test-sanitizers: deps
	@cmake -S . -B $(ASAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_PROJECT_INCLUDE=$(CURDIR)/cmake/Sanitizers.cmake \
	  -DRELU_SANITIZE=address,undefined >/dev/null
	@$(SANITIZER_ENV) cmake --build $(ASAN_BUILD_DIR) -j $(JOBS)
	cd $(ASAN_BUILD_DIR) && $(SANITIZER_ENV) ctest --output-on-failure -j $(JOBS) \
	  -E '$(ASAN_CTEST_EXCLUDE)' $(CTEST_ARGS)

# libFuzzer: a clang-14 build of the fuzz targets only (tests/fuzz), each
# run for FUZZ_SECONDS; fails on any crash, leak or sanitizer report.
test-fuzz: deps
	@cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_CXX_COMPILER=clang++-14 \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRELU_FUZZ=ON -DRELU_WERROR=OFF \
	  "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  >/dev/null
	@cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target request_fuzzer npy_fuzzer
	tests/fuzz/run_fuzzers.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS)

bench: build
	$(BUILD_DIR)/bench/relu_kernel_bench $(ARGS)

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR) $(FUZZ_BUILD_DIR)
