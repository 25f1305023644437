# Thin wrapper over CMake. `make run` and `make test` install what is missing (Debian 12, root),
# build out of tree in build/, and run.
BUILD_DIR ?= build/release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build run test unit-and-integration bench packages sanitize format clean \
	conntrack-flood-test fdb-flood-test oracle hostile fuzz fuzz-smoke soak restart-test

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

# Every test: unit, integration and end-to-end on the release build, then the sanitizer builds,
# then every fuzz target briefly (on its corpus and the inputs that once crashed it).
test: build
	@cd $(BUILD_DIR) && ctest --no-tests=error --output-on-failure -j $(JOBS) --timeout 900
	@$(MAKE) --no-print-directory sanitize
	@$(MAKE) --no-print-directory fuzz-smoke

# Unit and integration tests again, against ASan/UBSan (and TSan) builds.
sanitize: deps
	@JOBS=$(JOBS) scripts/sanitizer-tests

# The conntrack quota's long run: one VM sends 10^6 distinct flows while another's TCP
# connections must all succeed (`make test` runs it with 200,000 flows).
conntrack-flood-test: build
	@cd tests/integration && BUTTERFLY_BUILD_DIR=$(abspath $(BUILD_DIR)) BUTTERFLY_FLOOD_FLOWS=1000000 \
		PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m unittest -v test_conntrack_quota

# The reference oracle's long run (root): seeded SG configurations and packet sequences through
# Butterfly and through Linux conntrack until ORACLE_PACKETS packets are compared; prints the
# packets, the differences by class and the time. `make test` runs its short variant.
ORACLE_PACKETS ?= 1000000
oracle: build
	@BUTTERFLY_BUILD_DIR=$(abspath $(BUILD_DIR)) PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 \
	  tests/oracle/oracle.py --packets $(ORACLE_PACKETS)

# Malformed and mutated frames into a running butterflyd, 1,500,000 from each of a TAP VM, a
# vhost-user VM and the underlay (`make test` sends 450,000 from each).
hostile: build
	@cd tests/integration && BUTTERFLY_BUILD_DIR=$(abspath $(BUILD_DIR)) BUTTERFLY_HOSTILE_FRAMES=1500000 \
	  PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m unittest -v test_hostile

# The fuzz targets (clang-16, build/fuzz), FUZZ_SMOKE_SECONDS (15) each.
fuzz-smoke: deps
	@JOBS=$(JOBS) scripts/fuzz-tests smoke

# The fuzz targets for a long time: FUZZ_SECONDS (600) each, one after the other (or only
# FUZZ_TARGETS); prints each one's executions and executions per second.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?=
fuzz: deps
	@JOBS=$(JOBS) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz-tests long $(FUZZ_TARGETS)

# The FDB cap's long run: 10^6 source MACs flooded into one VNI from the underlay (`make test`
# runs it with 60,000).
fdb-flood-test: build
	@cd tests/integration && BUTTERFLY_BUILD_DIR=$(abspath $(BUILD_DIR)) BUTTERFLY_FDB_FLOOD_MACS=1000000 \
		PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m unittest -v test_fdb_flood

# The churn soak's long run: VMs' flows while the API makes up to SOAK_RATE security-group changes
# per second for SOAK_SECONDS (`make test` runs it for 20 s); prints the changes per second, the
# flows' forwarding gaps, the cut latency of a removed rule and RSS over time.
SOAK_SECONDS ?= 600
SOAK_RATE ?= 1500
soak: build
	@cd tests/integration && BUTTERFLY_BUILD_DIR=$(abspath $(BUILD_DIR)) BUTTERFLY_SOAK_SECONDS=$(SOAK_SECONDS) \
		BUTTERFLY_SOAK_WARMUP=60 BUTTERFLY_SOAK_RATE=$(SOAK_RATE) PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m unittest -v test_soak

# butterflyd killed (kill -9) and stopped cleanly in turns, RESTART_ROUNDS times, under testpmd VMs'
# traffic; prints the time until traffic resumes, each round and their median (`make test`: 2).
RESTART_ROUNDS ?= 20
restart-test: build
	@cd tests/integration && BUTTERFLY_BUILD_DIR=$(abspath $(BUILD_DIR)) BUTTERFLY_RESTART_ROUNDS=$(RESTART_ROUNDS) \
		PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m unittest -v test_restart

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
