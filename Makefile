# cilium-datapath-lab — the two commands that matter:
#   make up STACK=overlay   bring a lab up (local file backend, no Pulumi Cloud login)
#   make test               run every test (creates its own virtualenv)

STACK ?= overlay
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

# Local state next to the project; no `pulumi login` to any service. The passphrase protects
# secrets (the kubeconfig) in that state: set your own, or keep the lab default of none.
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state
export PULUMI_CONFIG_PASSPHRASE ?=
export PULUMI_SKIP_UPDATE_CHECK := true

# The Pulumi CLI, language host and providers that `make toolchain` builds (supply/toolchain.py): when
# the current recipe's toolchain is in the cache it goes first on PATH, with its own PULUMI_HOME
# (the providers) and no plugin downloads; its language host takes the venv's python from
# PULUMI_PYTHON_CMD. When it is not built, a pulumi already on PATH is used, if any.
TOOLCHAIN_DIR := $(shell $(PYTHON) -m supply.toolchain dir 2>/dev/null)
ifneq ($(TOOLCHAIN_DIR),)
export PATH := $(TOOLCHAIN_DIR)/bin:$(PATH)
export PULUMI_HOME := $(TOOLCHAIN_DIR)/pulumi-home
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION := true
export PULUMI_PYTHON_CMD := $(CURDIR)/$(PY)
endif

# Docker: the engine your own settings reach (DOCKER_HOST, the default socket or context), else this
# machine's local engine that `make dockerd` starts (engine/dockerd.sh, state under ~/.cache). In the
# second case DOCKER_HOST points at it for every recipe, the tests included.
LOCAL_DOCKER_HOST := $(shell $(CURDIR)/engine/dockerd.sh host-if-needed)
ifneq ($(LOCAL_DOCKER_HOST),)
export DOCKER_HOST := $(LOCAL_DOCKER_HOST)
endif

# The Cilium chart packed from the Go module (make chart, supply/chart.py): when it is built and no
# CILIUM_CHART is given, the tests check the lab's Helm values against it.
ifeq ($(CILIUM_CHART),)
BUILT_CHART := $(shell $(PYTHON) -m supply.chart path 2>/dev/null)
ifneq ($(BUILT_CHART),)
export CILIUM_CHART := $(BUILT_CHART)
endif
endif

# The one switch (lab/offline.py): on a machine that reaches no registry (this project's own
# machines, CI) a lab runs what supply/ builds here, named by a manifest in LAB_OFFLINE_SUPPLY;
# elsewhere the registries' images and Pulumi's own plugins. supply/offline.py detects which;
# LAB_SUPPLY=offline or LAB_SUPPLY=online overrides it. Only the stack targets see the manifest.
LAB_SUPPLY ?= $(shell $(PYTHON) -m supply.offline detect 2>/dev/null)
export LAB_SUPPLY
ifeq ($(LAB_SUPPLY),offline)
SUPPLY_FIRST := supply
# Deferred (=): read when a stack target runs, after `supply` has built what was missing.
_up _preview _destroy: export LAB_OFFLINE_SUPPLY = $(shell $(PYTHON) -m supply.offline manifest)
endif

.PHONY: venv test lint pytest preflight toolchain images chart cilium-images tools-image frr-image preloaded-node-image supply stack up preview destroy _up _preview _destroy bench compare mutation sweep clean help

help:
	@echo "make up STACK=<overlay|geneve|native-auto|static|bgp>   bring a lab up"
	@echo "make preview STACK=...   show what would change (pulumi preview --diff)"
	@echo "make destroy STACK=...   tear a lab down"
	@echo "make sweep STACK=...     list what a stack left on the Docker host; make clean removes it"
	@echo "make dockerd             start this machine's own Docker engine (make dockerd-stop stops it)"
	@echo "make test                lint, type-check and run the tests"
	@echo "make compare [MODES=...] [ROUNDS=2] [SAMPLES=5]   every mode up in turn, measured side by side (artifacts/compare/)"
	@echo "make mutation [MODULES=lab/routes.py]   mutation score of the fast tier, per module (a benchmark)"
	@echo "make toolchain           build the Pulumi CLI, language host, providers and kind (cached)"
	@echo "make images              build the kind node image offline and import it into Docker (cached)"
	@echo "make chart               pack the pinned Cilium Helm chart from the Go module proxy (cached)"
	@echo "make cilium-images       build Cilium's binaries and agent/operator images from the Go module proxy (cached)"
	@echo "make tools-image         build the checks' tools image from Debian packages (cached)"
	@echo "make frr-image           build the bgp lab's FRR router image from Debian packages (cached)"
	@echo "make preloaded-node-image   the node image with Cilium's and the tools image inside (cached)"
	@echo "make supply              build every missing piece of this machine's offline supply (cached)"

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,compare]'
	@touch $@

# shellcheck from Debian (apt-get install shellcheck). The scripts run as `bash -c <text>`
# (lab/scripts.py) or `bash <file>` (the image recipes), so most carry no shebang: the shell is
# named here.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	find scripts engine supply -name '*.sh' -exec shellcheck --shell=bash --severity=style {} +
	shellcheck --severity=style supply/images/frr/docker-start

pytest: venv
	$(PY) -m pytest

test: lint pytest

PREFLIGHT_FOR ?= up
preflight: venv
	$(PY) -m host.preflight --stack $(STACK) --for $(PREFLIGHT_FOR)

# Builds once per recipe into ~/.cache/cilium-datapath-lab/toolchain/<key>/ (see README).
toolchain:
	$(PYTHON) -m supply.toolchain build

# Builds the kind node image once per recipe into ~/.cache/cilium-datapath-lab/images/<key>/ and
# imports it into the Docker engine if missing (supply/node_image.py; debootstrap needs root).
images:
	$(PYTHON) -m supply.node_image build

# Packs the Cilium Helm chart of the pinned release from the github.com/cilium/cilium Go module into
# ~/.cache/cilium-datapath-lab/charts/<key>/ (supply/chart.py): helm.cilium.io is not reachable here.
chart:
	$(PYTHON) -m supply.chart build

# Builds Cilium's own binaries (agent, generic operator, cilium-dbg, cilium-health, CNI plugin, init
# tools) of the pinned release from the Go module proxy into
# ~/.cache/cilium-datapath-lab/cilium/<key>/bin/ (supply/cilium_images.py, supply/images/cilium/recipe.toml),
# then the agent image (debootstrap: needs root) and the operator image, imported into Docker.
cilium-images:
	$(PYTHON) -m supply.cilium_images build

# The checks' tools image (ip, tcpdump, ping, python3) from Debian packages, standing in for
# netshoot where no registry is reachable (supply/tools_image.py; debootstrap needs root).
tools-image:
	$(PYTHON) -m supply.tools_image build

# The bgp lab's FRR router image from Debian's frr and tini (supply/frr_image.py; debootstrap needs
# root), standing in for the pinned upstream FRR image where no registry is reachable.
frr-image:
	$(PYTHON) -m supply.frr_image build

# The node image with Cilium's and the tools image already in its containerd, so no `make up` copies
# them into every node (supply/preloaded_node.py); made from the three targets above, in Docker.
preloaded-node-image:
	$(PYTHON) -m supply.preloaded_node build

# Everything a machine without a registry needs for a lab, each piece built only if its cache key
# is missing (supply/offline.py), with this machine's own Docker engine started if none answers.
supply:
ifneq ($(LOCAL_DOCKER_HOST),)
	engine/dockerd.sh start
endif
	$(PYTHON) -m supply.offline build

$(CURDIR)/.pulumi-state:
	mkdir -p $@

stack: preflight $(CURDIR)/.pulumi-state
	@command -v pulumi >/dev/null || { echo "no pulumi CLI: run 'make toolchain'"; exit 1; }
	pulumi stack select --create $(STACK) --secrets-provider passphrase --non-interactive

# The public targets build the offline supply first where it is needed, then run the stack in a
# fresh make, which finds the toolchain that may have just been built.
up preview destroy: venv $(SUPPLY_FIRST)
	@$(MAKE) --no-print-directory _$@ STACK=$(STACK)

# UP_FLAGS: more `pulumi up` flags (bench/up_timing.py passes --event-log to time the phases).
UP_FLAGS ?=
_up: stack
	pulumi up --stack $(STACK) --yes --non-interactive --diff $(UP_FLAGS)

_preview: PREFLIGHT_FOR = preview
_preview: stack
	pulumi preview --stack $(STACK) --diff --non-interactive

_destroy:
	pulumi destroy --stack $(STACK) --yes --non-interactive

bench: venv
	$(PY) bench/static_eval.py

# The routing modes side by side (compare/): each mode's lab up, measured and destroyed in turn;
# artifacts/compare/report.md with its charts and compare.json. Many minutes: it says where it is.
# MODES (default: all, geneve where the kernel has it), ROUNDS (labs per mode), SAMPLES (runs of
# each measurement per round); COMPARE_FLAGS for the rest (`python -m compare --help`).
MODES ?= overlay geneve native-auto static bgp
ROUNDS ?= 2
SAMPLES ?= 5
COMPARE_FLAGS ?=
compare: venv $(SUPPLY_FIRST)
	$(PY) -m compare --modes $(MODES) --rounds $(ROUNDS) --samples $(SAMPLES) $(COMPARE_FLAGS)

# Mutation testing over the fast tier (bench/mutation/run.py): a benchmark, not part of `make test`.
# MODULES=lab/routes.py (space-separated) for some of bench/mutation/modules.toml; MUTATION_JOBS=2.
MODULES ?=
MUTATION_JOBS ?= 1
$(VENV)/.mutation-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[test,mutation]'
	@touch $@

mutation: $(VENV)/.mutation-installed
	$(PY) bench/mutation/run.py --jobs $(MUTATION_JOBS) $(MODULES)

# After a failed run: what the stack left on the Docker host (by label), and removing it.
sweep: venv
	$(PY) -m host.cleanup --stack $(STACK) --check

clean: venv
	$(PY) -m host.cleanup --stack $(STACK)

# This machine's own Docker engine: Debian's docker.io with its data, socket and log under
# ~/.cache/cilium-datapath-lab/engine, never a system Docker (engine/dockerd.sh says how and why).
.PHONY: dockerd dockerd-stop
dockerd:
	engine/dockerd.sh start

dockerd-stop:
	engine/dockerd.sh stop
