# Thin driver over CMake. `make run` and `make test` set the machine up first.
BUILD    ?= build
TYPE     ?= Release
WERROR   ?= OFF
GEN      := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
CMAKE_ARGS ?=
MODEL    ?=
FUZZ_SECONDS ?= 60

.PHONY: all deps build test run test-sanitize test-tsan test-aarch64 fuzz fuzz-smoke privacy-eval-data clean default-model

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	@cmake -S . -B $(BUILD) $(GEN) -DCMAKE_BUILD_TYPE=$(TYPE) -DEA_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null

build: deps
	@cmake -S . -B $(BUILD) $(GEN) -DCMAKE_BUILD_TYPE=$(TYPE) -DEA_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $$(nproc)

test: build
	@bash scripts/run-tests.sh $(BUILD)

# Starts the main job: the OpenAI-compatible server with its chat page.
# MODEL=path serves your own GGUF (default: a generated tiny model); HOST,
# PORT and SERVE_ARGS pass through (e.g. SERVE_ARGS="--api-key KEY").
HOST ?= 127.0.0.1
PORT ?= 8080
SERVE_ARGS ?=
run: build
	@m="$(MODEL)"; home=; \
	  if [ -z "$$m" ] && [ -f models/edgeagent-home.gguf ]; then m=models/edgeagent-home.gguf; home=1; fi; \
	  if [ -z "$$m" ]; then m=$(BUILD)/models/tiny.gguf; \
	  [ -f $$m ] || { mkdir -p $(BUILD)/models && $(BUILD)/edgeagent gen-model --preset tiny --type f16 --seed 1 -o $$m; }; fi; \
	  h="$(HOST)"; case "$$h" in 0.0.0.0|::) h=127.0.0.1;; esac; \
	  echo; echo "  chat page:  http://$$h:$(PORT)/      dashboard: http://$$h:$(PORT)/dashboard"; \
	  if [ -n "$$home" ]; then \
	    echo "  model:      edgeagent-home (built in: device control by tool calls; hands the rest off)"; \
	    echo "  curl:       curl http://$$h:$(PORT)/v1/chat/completions -H 'Content-Type: application/json' \\"; \
	    echo "                -d '{\"messages\":[{\"role\":\"user\",\"content\":\"turn on the kitchen light\"}],\"tools\":'\"\$$(cat models/edgeagent-home.tools.json)\"'}'"; \
	  else \
	    echo "  curl:       curl http://$$h:$(PORT)/v1/chat/completions -H 'Content-Type: application/json' \\"; \
	    echo "                -d '{\"model\":\"default\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":32}'"; \
	  fi; \
	  echo "  metrics:    http://$$h:$(PORT)/metrics     stop: Ctrl-C"; \
	  cfg=; if [ -n "$${OPENAI_API_KEY:-}" ]; then cfg="--config $(BUILD)/run.yaml"; \
	    scripts/run-config.sh $(BUILD)/run.yaml $${home:+home} || exit 2; \
	  else echo "  cloud:      none (set OPENAI_API_KEY, and OPENAI_BASE_URL for another provider)"; \
	    [ -n "$$home" ] && cfg="--config models/edgeagent-home.yaml"; fi; echo; \
	  exec $(BUILD)/edgeagent serve -m $$m --host $(HOST) --port $(PORT) $$cfg $(SERVE_ARGS)

test-sanitize: deps
	@$(MAKE) --no-print-directory test BUILD=build-asan TYPE=RelWithDebInfo \
	  CMAKE_ARGS="-DEA_SANITIZE=address,undefined $(CMAKE_ARGS)"

# ThreadSanitizer over the concurrency tests (TSAN_TESTS: a ctest -R regex).
TSAN_TESTS ?= test_engine|test_threads|test_server|test_cloud|test_routing|test_hot_switch
test-tsan: deps
	@cmake -S . -B build-tsan $(GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEA_WERROR=$(WERROR) \
	  -DEA_SANITIZE=thread $(CMAKE_ARGS) >/dev/null
	@cmake --build build-tsan -j $$(nproc)
	@EA_TEST_LOAD_N=300 bash scripts/run-tests.sh build-tsan -R '$(TSAN_TESTS)'

# Cross build for aarch64; the suite runs under qemu-aarch64 (generic and NEON kernels):
# the kernel/model/engine tests on a Cortex-A53 (neon), then everything on qemu's
# default CPU (neon-dotprod).
test-aarch64: deps
	@EA_EXTRA_PACKAGES="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libc6:arm64 libpcre2-dev:arm64 libjansson-dev:arm64" \
	  EA_FOREIGN_ARCH=arm64 bash scripts/install-deps.sh
	@cmake -S . -B build-aarch64 $(GEN) -DCMAKE_BUILD_TYPE=Release -DEA_WERROR=$(WERROR) \
	  -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake >/dev/null
	@cmake --build build-aarch64 -j $$(nproc)
	@echo "--- kernels, model and engine tests on a Cortex-A53 (ARMv8.0, no dotprod): the neon fallback"
	@QEMU_CPU=cortex-a53 EA_EXPECT_KERNELS=neon EA_TEST_LOAD_N=200 EA_MAX_THREADS=1 \
	  bash scripts/run-tests.sh build-aarch64 -R '^test_(kernels|kernels_batch|model|engine)$$'
	@echo "--- the whole suite on qemu's default CPU (dotprod)"
	@EA_EXPECT_KERNELS=neon-dotprod EA_TEST_LOAD_N=200 EA_MAX_THREADS=1 bash scripts/run-tests.sh build-aarch64

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz $(GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEA_FUZZ=ON \
	  -DEA_SANITIZE=address,undefined >/dev/null
	@cmake --build build-fuzz -j $$(nproc)

# Runs every fuzz target for FUZZ_SECONDS from its seed corpus.
fuzz-smoke: fuzz
	@bash scripts/fuzz-smoke.sh build-fuzz $(FUZZ_SECONDS)

# Regenerates the privacy evaluation set (tests/privacy_eval.h, a fixed seed)
# into tests/data/privacy_eval.jsonl; test_privacy fails when they differ.
privacy-eval-data: build
	@$(BUILD)/tools/gen_privacy_eval tests/data/privacy_eval.jsonl
	@wc -l tests/data/privacy_eval.jsonl

# Rebuilds the built-in home model (models/edgeagent-home.gguf, its sha256,
# tools file, loss curves, tests/data/home_heldout.jsonl) from nothing, seeded:
# tools/train/README.md. TRAIN_ARGS pass to tools/train/train.py.
TRAIN_ARGS ?=
default-model: build
	@bash tools/train/default-model.sh $(BUILD) $(BUILD)/train $(TRAIN_ARGS)

clean:
	rm -rf build build-asan build-tsan build-fuzz build-aarch64
