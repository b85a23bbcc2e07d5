# Two commands set everything up on a fresh machine:
#   make artifact   build, fetch the pinned dataset, run the paper pipeline, check claims, report
#   make test       fmt, clippy, every test (engine, kinds, CLI, real-data end to end, remote
#                   cache on a real nginx, SLURM on a real one-node cluster), LaTeX compile of
#                   every table, determinism audit of the real pipeline
# Both use the same dev build, so `make artifact` after `make test` builds nothing.

SHELL := /bin/bash
CARGO ?= cargo
# Where the pinned dataset is taken from when there is no network (a folder holding
# dataset.csv). Defaults to the shared mirror beside this checkout, when it exists.
ARTIFACT_MIRROR ?= $(abspath $(wildcard ../shared/upstream/bugs-in-LLM-inference-engines))
export ARTIFACT_MIRROR
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
# No incremental state for our two crates: a reviewer builds once, and writing the incremental
# cache costs build time (every target below uses the same setting, so none rebuilds another's).
export CARGO_INCREMENTAL ?= 0
BIN := $(TARGET_DIR)/debug/artifact
# Clippy runs inside every build of our two crates (clippy-driver as the workspace wrapper, with
# the arguments `cargo clippy -- -D warnings` would give it), not as a separate `cargo clippy`:
# that one type-checks every dependency again in check mode, minutes on 2 cores that `make
# artifact` never paid. Dependencies are compiled by plain rustc and shared by every target; the
# Rust version is pinned in rust-toolchain.toml, so the lints are the same on every machine.
# Without clippy-driver (a toolchain without the clippy component), `lint` runs `cargo clippy`.
CLIPPY_DRIVER := $(shell command -v clippy-driver 2>/dev/null || rustup which clippy-driver 2>/dev/null)
ifneq ($(CLIPPY_DRIVER),)
export RUSTC_WORKSPACE_WRAPPER := $(CLIPPY_DRIVER)
export CLIPPY_ARGS := -D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
endif

.PHONY: all build artifact test checks lint unit latex-deps latex-check audit chaos scaleout-deps scaleout bench bench-deps bench-scaleout clean help

all: artifact

help:
	@sed -n '1,6p' Makefile

build:
	$(CARGO) build --locked

# pdflatex + booktabs (Debian texlive), needed to prove every generated table compiles.
latex-deps:
	@command -v pdflatex >/dev/null && kpsewhich booktabs.sty >/dev/null || { \
	  echo "installing texlive-latex-base texlive-latex-recommended (pdflatex, booktabs)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends texlive-latex-base texlive-latex-recommended >/dev/null; }

# With clippy-driver as the wrapper, building every target is the lint (and the tests reuse it).
lint:
	$(CARGO) fmt --all -- --check
ifneq ($(CLIPPY_DRIVER),)
	$(CARGO) build --locked --workspace --all-targets
else
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
endif

# nginx + htpasswd (the remote-cache tests start a real nginx) and munge + SLURM (the SLURM
# integration test), installed with apt when missing (as root, or with sudo).
scaleout-deps:
	@bash scripts/scaleout/deps.sh

unit: build scaleout-deps
	$(CARGO) test --locked --workspace

# The SLURM integration test against a real single-node cluster that the script starts and
# stops (by PID) around it. Needs root (slurmd runs jobs as their user); elsewhere it fails
# loudly rather than pass without having run.
scaleout: build scaleout-deps
	bash scripts/scaleout/with-slurm.sh $(CARGO) test --locked --test it slurm::a_real_slurm_cluster_runs_fails_and_cancels_jobs -- --ignored --exact

latex-check: latex-deps
	bash scripts/latex-check.sh paper-tables

# Rerun every stage of the real pipeline ignoring the cache and compare bytes.
audit: build
	$(BIN) run --check

# Kill, interrupt and race loop (issue 8): random SIGKILL/SIGTERM/SIGINT and concurrent runs,
# then checks that nothing was lost, ran twice at once, or was left behind. Bounded in time
# (CHAOS_SECONDS, 30 by default in `make test`).
chaos: build
	bash scripts/chaos.sh $(BIN) $(or $(CHAOS_SECONDS),30)

# After the build (lint), the checks run side by side: most of their time is waiting (the
# chaos loop's random kills and sleeps, the SLURM test's polling, subprocesses of the
# integration tests), so on 2 cores this saves about the chaos loop's 30 s; each check's output
# is printed in one piece when it ends (--output-sync).
test: latex-deps lint
	@$(MAKE) --no-print-directory -j 4 --output-sync=target checks
	@echo "make test: all checks passed"

checks: unit scaleout audit latex-check chaos

# scripts/artifact.sh builds first itself, so that the total time it prints includes the build.
artifact:
	@bash scripts/artifact.sh

# Benchmarks: the engine against GNU Make (and Snakemake) with the reviewer's dev build, the
# paper pipeline on real data with the dev build, and at 10^4..10^7 rows with the optimised
# bench-opt profile, which only this target builds (a clean bench-opt build takes about 20 min).
bench: build bench-deps
	$(CARGO) build --locked --profile bench-opt
	PATH="$(abspath $(BENCH_VENV))/bin:$$PATH" bash bench/engine.sh $(BIN)
	bash bench/paper.sh $(BIN) $(TARGET_DIR)/bench-opt/artifact

# Snakemake, the peer of bench/engine.sh's third column, pinned, in a virtualenv under the
# target folder (PyPI; about 40 s the first time). `make bench` only.
BENCH_VENV := $(TARGET_DIR)/bench-venv
SNAKEMAKE_VERSION := 9.27.1
bench-deps:
	@$(BENCH_VENV)/bin/snakemake --version 2>/dev/null | grep -qx '$(SNAKEMAKE_VERSION)' || { \
	  python3 -m venv $(BENCH_VENV) && \
	  $(BENCH_VENV)/bin/pip install -q 'snakemake==$(SNAKEMAKE_VERSION)'; }

# Scale-out figures (BENCHMARKS.md "Scale-out"): 20 command stages through SLURM against local,
# and a second clone of the paper pipeline fetched from an nginx remote cache. Root only.
bench-scaleout: build scaleout-deps
	bash scripts/scaleout/with-slurm.sh bash bench/scaleout.sh $(BIN)

clean:
	$(CARGO) clean
	rm -rf .artifact
