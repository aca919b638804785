# Every target installs what it needs: a virtualenv from the locks in requirements/ (hashes
# required), Kafka's jars from Maven Central (cached under .cache/, checked against their recorded
# sha256), Java and Maven through apt when missing and run as root.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UV := $(VENV)/bin/uv
# One lock per environment, each with every artifact's sha256 (make lock writes them).
REQ := requirements
KAFKA_PORT ?= 9092
# 3: three brokers (KAFKA_PORT and the next two) and a controller, topics replicated three times
BROKERS ?= 1
# sasl_ssl: one broker speaking only TLS + SCRAM-SHA-512 (docs/kafka.md)
SECURITY ?= plaintext
PYTEST_ARGS ?=
# uv uses the Python it is given and never downloads one.
export UV_PYTHON_DOWNLOADS := never

.PHONY: help venv lock tools go-tools checkov packages kafka-jars kafka-up kafka-down lint check test fuzz demo demo-down bench soak images release-manifests k8s-check browser k8s-e2e k8s-scale

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

# uv comes first, installed by pip from its own lock with hashes required; everything else is
# installed by uv from requirements/dev.txt, hashes required, and the project itself on top.
$(UV): $(REQ)/uv.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found " + sys.version.split()[0] + ")")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing uv into $(VENV) from $(REQ)/uv.txt (pip, hashes required)"
	@$(PY) -m ensurepip -q >/dev/null 2>&1 || true
	@$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r $(REQ)/uv.txt
	@touch $@

$(STAMP): $(UV) $(REQ)/dev.txt pyproject.toml
	@echo "installing $(REQ)/dev.txt into $(VENV) (uv, hashes required)"
	@started=$$(date +%s); \
	$(UV) pip sync -q --python $(PY) --require-hashes $(REQ)/dev.txt $(REQ)/uv.txt && \
	$(UV) pip install -q --python $(PY) --no-deps --no-build-isolation -e . && \
	echo "  $(VENV) ready ($$(( $$(date +%s) - started )) s)"
	@touch $@

venv: $(STAMP) ## create or refresh the virtualenv from requirements/dev.txt (hashes required)

# make lock [UPGRADE=1]: keeps every pin that pyproject.toml still allows (UPGRADE=1: the newest
# allowed). The images' locks take their versions from the dev lock, so tests run what ships.
LOCK = $(UV) pip compile -q --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" $(if $(filter 1 yes true,$(UPGRADE)),--upgrade)
lock: $(UV) ## write requirements/*.txt from pyproject.toml with uv (hashes, every platform)
	$(LOCK) pyproject.toml --extra dev -o $(REQ)/dev.txt
	$(LOCK) pyproject.toml --extra collector -c $(REQ)/dev.txt -o $(REQ)/collector.txt
	$(LOCK) pyproject.toml --extra producer -c $(REQ)/dev.txt -o $(REQ)/producer.txt
	$(LOCK) pyproject.toml --extra validator -c $(REQ)/dev.txt -o $(REQ)/validator.txt
	$(LOCK) --group uv -o $(REQ)/uv.txt
	$(LOCK) --group checkov -o $(REQ)/checkov.txt
	$(LOCK) --group audit -o $(REQ)/audit.txt

kafka-jars: $(STAMP) ## fetch the pinned Kafka broker's jars with Maven (cached)
	@$(PY) -m devstack.kafka fetch

kafka-up: kafka-jars ## start a broker (BROKERS=3: three; SECURITY=sasl_ssl: TLS + SCRAM) on 127.0.0.1:$(KAFKA_PORT), create the topics
	@$(PY) -m devstack.kafka up --port $(KAFKA_PORT) --brokers $(BROKERS) --security $(SECURITY)

kafka-down: $(STAMP) ## stop the broker or brokers started by kafka-up
	@$(PY) -m devstack.kafka down

lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Every test not marked kafka, slow or tools: no broker, no Java, nothing to install.
check: lint ## ruff, mypy and the quick tests (under a minute, no broker, no Java)
	$(VENV)/bin/pytest -q -n 2 -m "not kafka and not slow and not tools" -p no:cacheprovider $(PYTEST_ARGS)

# Every tool the suite runs is fetched or built by `make tools`, before pytest starts, never inside a
# test's timeout: Debian's packages in one apt-get, then at once (downloads beside compiles) Kafka's
# jars, checkov's virtualenv and the Go tools no registry serves (devstack/go_tools.py says why).
tools: packages $(STAMP) ## every tool the tests run: Debian packages, Kafka jars, checkov, Go tools
	@$(MAKE) --no-print-directory -j3 kafka-jars go-tools checkov

go-tools: $(STAMP) ## build kustomize, kube-score, promtool and actionlint into .cache/ (pinned)
	@$(PY) -m devstack.go_tools

CHECKOV_VENV := .venv-checkov
checkov: $(CHECKOV_VENV)/.installed ## checkov in a virtualenv of its own, from requirements/checkov.txt
$(CHECKOV_VENV)/.installed: $(UV) $(REQ)/checkov.txt
	@echo "installing $(REQ)/checkov.txt into $(CHECKOV_VENV) (uv, hashes required)"
	@started=$$(date +%s); \
	$(UV) venv -q --allow-existing --python $(PY) $(CHECKOV_VENV) && \
	$(UV) pip sync -q --python $(CHECKOV_VENV)/bin/python --require-hashes $(REQ)/checkov.txt && \
	echo "  checkov installed ($$(( $$(date +%s) - started )) s)"
	@touch $@

# Two workers (PYTEST_WORKERS), each with its own broker on free ports; the three-broker cluster's
# tests stay together on one worker (tests/conftest.py). The deployment gate runs in full as one of
# the tests (tests/deploy/test_gate.py), beside the others rather than before them.
PYTEST_WORKERS ?= 2
test: lint tools ## lint, the offline deployment gate, and every test against a real broker
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# make fuzz [FUZZ_SECONDS=120]: generated hostile requests for that long (make test runs 20 s)
FUZZ_SECONDS ?= 120
fuzz: kafka-jars ## Hypothesis: hostile bodies, headers and codings at a real collector, ending in a reconciliation
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(VENV)/bin/pytest -q -s -p no:cacheprovider tests/e2e/test_fuzz_requests.py

# make demo [KEEP=1] [DATA="files or URLs"] [ROWS=5000] [RATE=300] [BATCH=10] [REPLICAS=3] [BROKERS=3]
demo: kafka-jars ## Kafka, collector replicas behind HAProxy, three producers, summary, reconciliation
	@$(PY) -m devstack.demo up --data "$(DATA)" $(if $(filter 1 yes true,$(KEEP)),--keep) \
		$(if $(ROWS),--rows $(ROWS)) $(if $(RATE),--rate $(RATE)) \
		$(if $(BATCH),--batch-size $(BATCH)) $(if $(REPLICAS),--replicas $(REPLICAS)) \
		--brokers $(BROKERS)

demo-down: $(STAMP) ## stop the stack left running by make demo KEEP=1
	@$(PY) -m devstack.demo down

# make bench [BENCH_QUICK=1]: about 10 minutes (1-2 quick), writes bench/results.md and .png
bench: kafka-jars ## side-by-side benchmark against a real broker; results in bench/results.md
	@BENCH_QUICK=$(BENCH_QUICK) $(PY) -m bench

# make soak [SOAK_MINUTES=10] [SOAK_RATE=100]: not part of make test; writes bench/soak.md and .png
soak: kafka-jars ## 10 min through 3 replicas and 3 brokers, one of each restarted every 2 min
	@$(PY) -m bench.soak $(if $(SOAK_MINUTES),--minutes $(SOAK_MINUTES)) $(if $(SOAK_RATE),--rate $(SOAK_RATE))

# make images [PYTHON_IMAGE=base image] [IMAGE_TAG=tag, default the project's version]: each
# image's CycloneDX SBOM goes to .artifacts/sbom/
images: $(STAMP) ## build the images and their SBOMs (needs a running Docker engine)
	@docker info >/dev/null 2>&1 || { echo "make images: no Docker engine is available here (\`docker info\` failed), so no image was built. Start Docker (or run this where it runs) and try again." >&2; exit 1; }
	@$(PY) -m devstack.images $(if $(PYTHON_IMAGE),--base-image $(PYTHON_IMAGE))

# make release-manifests RELEASE_IMAGES="collector=REG/collector@sha256:... producer=... validator=..."
release-manifests: go-tools checkov ## the production overlay with the pushed images by digest, checked, in .artifacts/release/
	@$(PY) -m devstack.release --images "$(RELEASE_IMAGES)"

k8s-check: go-tools checkov ## render every overlay and check manifests and Dockerfiles offline
	@$(PY) -m devstack.gate

# Debian's packages the suite runs: Java and Maven (Kafka from Maven Central), HAProxy (the demo's
# balancer), and Debian's own Chromium and chromedriver (no browser download) for
# tests/e2e/test_docs_browser.py and tests/collector/test_browser.py.
APT_PACKAGES := openjdk-17-jre-headless maven haproxy chromium chromium-driver fonts-liberation
APT_COMMANDS := java mvn haproxy chromium chromedriver

packages: ## Java, Maven, HAProxy, Chromium and chromedriver from Debian (apt-get as root when missing)
	@missing=""; for command in $(APT_COMMANDS); do command -v $$command >/dev/null || missing="$$missing $$command"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $(APT_PACKAGES) with apt-get (missing:$$missing)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -q && apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
	  else \
	    echo "make packages:$$missing not found; install them, for example \`sudo apt-get install $(APT_PACKAGES)\` on Debian or Ubuntu" >&2; \
	    exit 1; \
	  fi; \
	fi

browser: packages ## headless Chromium and chromedriver for the docs tests (part of make packages)

# make k8s-e2e [PYTHON_IMAGE=base image] [LOAD=auto|kind|minikube|ctr|none] [KEEP=1] [FAULTS=0]
k8s-e2e: $(STAMP) ## on the current kubectl context: build, load, apply, replay with faults, reconcile
	@$(PY) -m devstack.k8s_e2e $(if $(PYTHON_IMAGE),--base-image $(PYTHON_IMAGE)) \
		$(if $(LOAD),--load $(LOAD)) $(if $(filter 1 yes true,$(KEEP)),--keep) \
		$(if $(filter 0 no false,$(FAULTS)),--no-faults)

# make k8s-scale [CPU_LIMIT=250m] [PYTHON_IMAGE=base image] [LOAD=auto|kind|minikube|ctr|none] [KEEP=1]
k8s-scale: $(STAMP) ## on the current kubectl context (metrics API needed): scaling curve, the HPA acting, reconcile
	@$(PY) -m devstack.k8s_scale $(if $(CPU_LIMIT),--cpu-limit $(CPU_LIMIT)) \
		$(if $(PYTHON_IMAGE),--base-image $(PYTHON_IMAGE)) $(if $(LOAD),--load $(LOAD)) \
		$(if $(filter 1 yes true,$(KEEP)),--keep)
