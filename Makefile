# The operator's interface. Every target installs what it needs, so each works on a fresh clone.
#   make demo                      local stack, deploy, upload the corpus, print the results
#   make test                      lint + unit + package/cfn-lint + template + functional tests
#   make deploy STAGE=dev          deploy to AWS (your credentials); STAGE=local: the local stack
#   make redrive STAGE=... [DRY_RUN=1] [MAX=N]
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

STAGE ?= local
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# MiniStack, the local stack, runs the Lambda zip on its own interpreter: Python 3.12 like
# Lambda's runtime where one is found (pyenv's, or on PATH; PY312= to not look), else $(PYTHON),
# and then the local stage's zip is built for that Python instead (local/deploy.py says so).
PY312 ?= $(shell ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | tail -1 || true)
PY312 := $(or $(PY312),$(shell command -v python3.12 2>/dev/null))
MINISTACK_PYTHON := $(or $(PY312),$(PYTHON))
MINISTACK_VENV := .venv-ministack
CHECKOV_VENV := .venv-checkov
# The packaged templates, made again when what goes into them changed (make lint scans them).
TEMPLATE := cloudformation-template-update-stack.json
TEMPLATES := build/dev/$(TEMPLATE) build/options/$(TEMPLATE)
PACKAGE_INPUTS := serverless.yml $(wildcard resources/*.yml) package-lock.json \
                  requirements-lambda.txt $(shell find src -type f -not -path '*/__pycache__/*')
SLS := node_modules/.bin/serverless
# Packaging is offline: no telemetry, no login, and dummy credentials where none are set.
export SLS_TELEMETRY_DISABLED := 1
export SLS_NOTIFICATIONS_MODE := off
export PATH := $(CURDIR)/$(BIN):$(PATH)
OFFLINE_AWS := AWS_ACCESS_KEY_ID=$${AWS_ACCESS_KEY_ID:-offline} AWS_SECRET_ACCESS_KEY=$${AWS_SECRET_ACCESS_KEY:-offline}
PYTEST_ARGS ?=
# make package also packages these (build/options): every option that changes the template
OPTIONS_PARAMS = --param=provisionedConcurrency=2 --param=notifyEmail=ops@example.com \
                 --param=alarmEmail=oncall@example.com --param=uploadsFanOut=true \
                 --param=watermark=image:watermarks/logo.png --param=watermarkSizes=large \
                 --param=apiAuth=jwt --param=jwtOwnerClaim=sub --param=jwtAudience=gallery-client \
                 --param=jwtIssuer=https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_example \
                 --param=delivery=cdn

.PHONY: help install test test-unit test-chaos-short test-functional test-functional-localstack test-functional-both test-template \
        lint package deploy demo \
        remove local-up local-down redrive bench bench-labels label-photos bench-coldstart bench-aws bench-cost bench-api bench-e2e bench-reconcile bench-backfill bench-guard chaos clean \
        browser-deps

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,local-ml]'
	touch $@

node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(MINISTACK_VENV)/.installed: requirements-ministack.txt
	@$(if $(PY312),,echo "no Python 3.12 found: MiniStack runs on $$($(PYTHON) --version)")
	$(MINISTACK_PYTHON) -m venv $(MINISTACK_VENV)
	$(MINISTACK_VENV)/bin/pip install -q --upgrade pip
	$(MINISTACK_VENV)/bin/pip install -q -r requirements-ministack.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/pip install -q -r requirements-checkov.txt
	touch $@

install: $(VENV)/.installed node_modules/.installed $(MINISTACK_VENV)/.installed $(CHECKOV_VENV)/.installed ## create .venv, .venv-ministack, .venv-checkov and install npm packages

test: lint test-unit package test-functional-both test-chaos-short ## everything CI runs

test-functional-both: install browser-deps ## both functional runs side by side (each mostly waits on its endpoint)
	@echo "functional tests: MiniStack and the LocalStack stand-in side by side; each run's output follows when it ends"
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-functional test-functional-localstack

test-unit: install ## unit tests (moto in-process, no endpoint; one worker per CPU)
	$(BIN)/pytest tests/unit -q -n auto $(PYTEST_ARGS)

browser-deps: ## Debian's chromium for the gallery's browser test (apt, as root)
	@command -v chromium >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test-functional: install browser-deps ## functional tests on the local stack (LOCALSTACK_ENDPOINT: on that one)
	$(BIN)/pytest tests/functional -q -m "not chaos" $(PYTEST_ARGS)

test-chaos-short: install ## make chaos itself at 70 keys (about 100 uploads), alone: it loads every core
	$(BIN)/pytest tests/functional -q -m chaos $(PYTEST_ARGS)

LOCALSTACK_PORT ?= 4566
test-functional-localstack: install browser-deps ## LocalStack users' part of the suite on a stand-in (MiniStack, no IAM) on :4566
	@# Tests that start their own MiniStack ran in test-functional already: the same run here.
	@# The stand-in is MiniStack: its functions run here, only IAM is off (tests/functional/conftest.py).
	@# What LocalStack users run (deploy, pipeline, CLI, API, gallery, DLQ, labels): the rest is
	@# the endpoint-independent logic, run once in test-functional.
	IMGPIPE_EXPECT=local-functions,ministack $(BIN)/python -m tests.harness.standin $(LOCALSTACK_PORT) -- \
	  $(BIN)/pytest tests/functional -q -m "localstack_path and not own_endpoint" $(PYTEST_ARGS)


lint: install $(TEMPLATES) ## pre-commit on every file (yaml/toml, ruff, ruff format, mypy --strict); checkov on both packaged templates
	$(BIN)/pre-commit run --all-files --show-diff-on-failure
	@# A check that does not fit is skipped in the template, with its reason (resources/checkov.yml).
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
	  $(foreach t,$(TEMPLATES),-f $(t))

build/dev/$(TEMPLATE): $(PACKAGE_INPUTS) | install
	@# Into build/dev, apart from .serverless/ that local deploys use.
	$(OFFLINE_AWS) $(SLS) package --stage dev --package build/dev

build/options/$(TEMPLATE): $(PACKAGE_INPUTS) | install
	@# The options that change the template's shape, all on, linted and tested too.
	$(OFFLINE_AWS) $(SLS) package --stage dev --package build/options $(OPTIONS_PARAMS)

package: install $(TEMPLATES) ## serverless package (stage dev, offline) + cfn-lint + template tests
	@# W3005 is in the HTTP API route Serverless generates (a redundant DependsOn), not ours.
	$(BIN)/cfn-lint --ignore-checks W3005 -- build/dev/$(TEMPLATE)
	$(BIN)/cfn-lint --ignore-checks W3005 -- build/options/$(TEMPLATE)
	$(BIN)/pytest tests/template -q $(PYTEST_ARGS)
	@ls -l build/dev/imgpipe.zip | awk '{printf "lambda zip: %.1f MB\n", $$5/1048576}'

deploy: install ## deploy STAGE (default local: the embedded endpoint or LocalStack)
ifeq ($(STAGE),local)
	$(BIN)/imgpipe local deploy
else
	$(SLS) deploy --stage $(STAGE)
endif

remove: install ## empty STAGE's buckets (versions, markers, multipart debris) and delete its stack; YES=1 skips the question
	$(BIN)/imgpipe remove --stage $(STAGE) $(if $(YES),--yes)

demo: install ## the walk-through: local stack, upload the corpus photos, print the results
	$(BIN)/imgpipe demo

local-up: install ## start MiniStack (or use LOCALSTACK_ENDPOINT)
	$(BIN)/imgpipe local up

local-down: ## stop the embedded AWS endpoint
	@if [ -x $(BIN)/imgpipe ]; then $(BIN)/imgpipe local down; fi

REDRIVE_EVENT = {"dry_run": $(if $(DRY_RUN),true,false)$(if $(MAX),$(comma) "max_messages": $(MAX))}

redrive: install ## sls invoke -f redrive (DRY_RUN=1 lists, MAX=N caps)
ifeq ($(STAGE),local)
	@# The local endpoint runs the deployed function itself, as AWS does.
	eval "$$($(BIN)/imgpipe local env)" && \
	  env -u AWS_ENDPOINT_URL $(SLS) invoke -f redrive --stage local -d '$(REDRIVE_EVENT)'
else
	$(SLS) invoke -f redrive --stage $(STAGE) -d '$(REDRIVE_EVENT)'
endif

bench: install ## thumbnail engine vs naive Pillow, thumbnail(), decode floor and sharp; each format vs sharp; HEIC vs its decode and JPEG
	$(BIN)/python -m bench.thumbs $(BENCH_ARGS)
	$(BIN)/python -m bench.formats
	$(BIN)/python -m bench.heic

label-photos: ## Debian's wallpapers, puzzle and OpenCV sample photos: most of bench-labels' evaluation set (apt, as root)
	@test -d /usr/share/backgrounds/mate/nature -a -d /usr/share/wallpapers/Path \
	  -a -f /usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg \
	  -a -f /usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg -a -d /usr/share/palapeli/collection \
	  -a -f /usr/share/doc/opencv-doc/examples/data/sudoku.png || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    mate-backgrounds plasma-workspace-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 \
	    palapeli-data opencv-doc >/dev/null; }

bench-labels: install label-photos ## the offline labeler: ms per detector, threads, held-out coverage/precision
	$(BIN)/python -m bench.labels $(BENCH_ARGS)

bench-coldstart: package ## handler import time (python3.12, from the zip) and zip size
	$(BIN)/python -m bench.coldstart

bench-aws: install ## the handler under a simulated round trip (0, 20 ms); then a 10^6 backfill and a 100-upload burst, modelled
	$(BIN)/python -m bench.aws_latency $(BENCH_ARGS)

bench-cost: install ## dollars per million images: the default stage and each option (src/imgpipe/prices.json)
	$(BIN)/python -m bench.cost

bench-api: install ## DynamoDB reads per status-API list request, capped vs uncapped
	$(BIN)/python -m bench.api_reads $(BENCH_ARGS)

bench-reconcile: install ## peak memory of reconcile over 10^4..10^6 objects, streamed vs held in memory
	$(BIN)/python -m bench.reconcile_memory

bench-e2e: install ## the whole pipeline on the local stack: burst + steady stream vs the bare engine
	$(BIN)/python -m bench.e2e $(BENCH_ARGS)

bench-backfill: install ## backfill memory at 10^4..10^6 keys, then 10^4 objects on the local stack racing live traffic
	$(BIN)/python -m bench.backfill --memory 10000 100000 1000000 --local 10000

bench-guard: install ## what the local stack's guard costs a request (S3, SQS, Lambda, DynamoDB) vs the same MiniStack without it
	$(BIN)/python -m bench.guard

chaos: install ## 517 uploads/overwrites + 104 deletes, 20% faults, a crash, DLQ + redrive, reconcile: all 0 (a double announcement only per environment killed)
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

clean: local-down ## remove build output, caches and the local state
	rm -rf .serverless .imgpipe demo-out .pytest_cache .mypy_cache .ruff_cache dist build test-output

comma := ,
