# Makefile -- the project's entry points; CMake does the building.
#
#   make test      plain (build/), clang (build-clang/), ThreadSanitizer (build-tsan/) and
#                  ASan+UBSan (build-asan/) builds, each configured if needed, built and
#                  tested with ctest (the others use the default compiler, gcc); every
#                  build runs even if an earlier one failed, and the target fails if any did.
#   make demo      builds build/ and runs the tour, `cfutures demo` (timelines, downloads
#                  and thumbnails go to build/demo/).
#   make bench     Release build with the benchmarks (build-bench/), then bench/run.py.
#   make install   builds build/ and installs it under PREFIX (default /usr/local).
#   make clean     removes every build directory.
#
# Each target first runs scripts/setup-deps.sh so a fresh machine gets its packages.
# Sanitizer-specific runtime options and the ThreadSanitizer launcher are set by the CMake
# test registration (cmake/CfBuild.cmake), so plain `ctest` in a build directory behaves
# the same as these targets.  Stress tests are RUN_SERIAL, so `ctest -j2` never runs
# anything beside them.

SHELL := /bin/bash
CMAKE ?= cmake
PREFIX ?= /usr/local
JOBS := $(shell nproc 2>/dev/null || echo 2)

BUILD_DIRS := build build-clang build-tsan build-asan build-bench
# Sanitized builds are Debug with -O1: full debug info, and fast enough for the stress tests.
SAN_TYPE := -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1"
CONFIG_build := -DCMAKE_BUILD_TYPE=RelWithDebInfo
# The same build with Debian's clang: keeps the code -Wall -Wextra -Werror clean with both.
CONFIG_build-clang := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang
CONFIG_build-tsan := $(SAN_TYPE) -DCF_SANITIZE=thread
CONFIG_build-asan := $(SAN_TYPE) -DCF_SANITIZE=address
CONFIG_build-bench := -DCMAKE_BUILD_TYPE=Release -DCF_BUILD_BENCH=ON \
                      -DCF_BUILD_TESTS=OFF -DCF_BUILD_EXAMPLES=OFF

TEST_BUILDS := build build-clang build-tsan build-asan

.PHONY: all test $(addprefix test-,$(TEST_BUILDS)) demo bench install clean \
        $(addprefix compile-,$(BUILD_DIRS))

all: compile-build

# compile-<dir>: configure <dir> if it has never been configured, then build it.  (A
# configured tree re-runs CMake by itself when a CMakeLists.txt changes.)  The inner make
# is started as a top-level one: its -j comes from here, not from this make's job server,
# and it prints no "Entering directory" noise.
$(addprefix compile-,$(BUILD_DIRS)): compile-%:
	@[ -f $*/CMakeCache.txt ] || $(CMAKE) -S . -B $* $(CONFIG_$*)
	@env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(CMAKE) --build $* -j$(JOBS)

# test-<dir>: build and run every test of one build; ctest's summary is kept in
# <dir>/ctest.log for the totals printed by `make test`.
$(addprefix test-,$(TEST_BUILDS)): test-%:
	@printf '\n==================== %s (%s) ====================\n' '$*' '$(CONFIG_$*)'
	@rm -f $*/ctest.log
	@$(MAKE) --no-print-directory compile-$*
	@cd $* && ctest --output-on-failure --no-tests=error -j2 2>&1 | tee ctest.log; \
	    exit $${PIPESTATUS[0]}

test:
	@bash scripts/setup-deps.sh test
	@failed=; passed_n=0; failed_n=0; \
	for b in $(TEST_BUILDS); do \
	    $(MAKE) --no-print-directory test-$$b || failed="$$failed $$b"; \
	done; \
	echo; echo "==================== summary ===================="; \
	for b in $(TEST_BUILDS); do \
	    line=$$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' \
	            $$b/ctest.log 2>/dev/null || true); \
	    if [ -z "$$line" ]; then echo "$$b: did not get to run its tests"; continue; fi; \
	    echo "$$b: $$line"; \
	    set -- $$line; failed_n=$$((failed_n + $$4)); passed_n=$$((passed_n + $$9 - $$4)); \
	done; \
	echo "total: $$passed_n passed, $$failed_n failed"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED in:$$failed"; exit 1; fi; \
	echo "make test: all builds passed"

demo:
	@bash scripts/setup-deps.sh demo
	@$(MAKE) --no-print-directory compile-build
	build/tools/cfutures demo --output build/demo

bench:
	@bash scripts/setup-deps.sh bench
	@$(MAKE) --no-print-directory compile-build-bench
	/usr/bin/python3 bench/run.py --build build-bench

install:
	@bash scripts/setup-deps.sh test
	@$(MAKE) --no-print-directory compile-build
	$(CMAKE) --install build --prefix "$(PREFIX)"

clean:
	rm -rf $(BUILD_DIRS)
