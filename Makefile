# Thin wrapper over CMake. `make run` and `make test` install what is missing (Debian 12, root),
# build out of tree in build/, and run.
BUILD_DIR ?= build/release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build run test unit-and-integration bench packages sanitize format clean \
	conntrack-flood-test fdb-flood-test

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# Starts butterflyd in the foreground with its defaults (Ctrl-C stops it).
run: build
	$(BUILD_DIR)/src/butterflyd

# Every test: unit, integration and end-to-end on the release build, then the sanitizer builds.
test: build
	@cd $(BUILD_DIR) && ctest --no-tests=error --output-on-failure -j $(JOBS) --timeout 900
	@$(MAKE) --no-print-directory sanitize

# Unit and integration tests again, against ASan/UBSan (and TSan) builds.
sanitize: deps
	@JOBS=$(JOBS) scripts/sanitizer-tests

# The conntrack quota's long run: one VM sends 10^6 distinct flows while another's TCP
# connections must all succeed (`make test` runs it with 200,000 flows).
conntrack-flood-test: build
	@cd tests/integration && BUTTERFLY_BUILD_DIR=$(abspath $(BUILD_DIR)) BUTTERFLY_FLOOD_FLOWS=1000000 \
		PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m unittest -v test_conntrack_quota

# The FDB cap's long run: 10^6 source MACs flooded into one VNI from the underlay (`make test`
# runs it with 60,000).
fdb-flood-test: build
	@cd tests/integration && BUTTERFLY_BUILD_DIR=$(abspath $(BUILD_DIR)) BUTTERFLY_FDB_FLOOD_MACS=1000000 \
		PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m unittest -v test_fdb_flood

# Prints the benchmark tables (nothing is asserted).
bench: build
	@scripts/run-benchmarks $(BUILD_DIR)

# An RPM and a DEB of the built tree, in $(BUILD_DIR)/packages.
packages: build
	@scripts/build-packages $(BUILD_DIR)

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
