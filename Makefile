# Pipedrive Lambda kit. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
FUNCTIONS := callback refresher apicall webhooks
# AWS runs the functions on Graviton; `make build-local` builds for this machine instead.
LAMBDA_ARCH ?= arm64
GOFLAGS_LAMBDA := -tags lambda.norpc -trimpath -ldflags='-s -w'
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Fuzz smoke in `make test`: package:target:executions. A count, not a duration: Go 1.26's fuzz
# coordinator can fail a target with "context deadline exceeded" when a -fuzztime duration ends
# while a worker is mid-call (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
# Each count is about 5-10 s on a loaded 2-core machine. TestMakeFuzzListsEveryTarget keeps the
# list complete.
FUZZ_TARGETS := \
	./pkg/pderrors:FuzzClassifyAPI:100000 \
	./pkg/pderrors:FuzzClassifyOAuth:100000 \
	./internal/oauthstate:FuzzVerify:200000 \
	./internal/oauthstate:FuzzVerifyBound:200000 \
	./internal/uninstall:FuzzParseBody:50000 \
	./internal/functions/callback:FuzzCallbackRequest:30000 \
	./internal/pdoauth:FuzzParseToken:100000 \
	./internal/pdoauth:FuzzValidateAPIDomain:80000 \
	./internal/pdapi:FuzzMe:8000 \
	./internal/pdapi:FuzzWebhooks:12000 \
	./internal/clientcreds:FuzzParse:50000 \
	./internal/webhook:FuzzParse:200000 \
	./internal/webhook:FuzzAuthenticate:100000 \
	./internal/jobs:FuzzParse:50000 \
	./internal/jobs:FuzzWebhookEvent:3000 \
	./internal/webhook:FuzzAuthorized:300000 \
	./internal/functions/webhooks:FuzzReceive:40000 \
	./internal/refresh:FuzzParseInvocation:30000 \
	./internal/catchup:FuzzParsePage:50000
# FUZZTIME (a duration, e.g. 60s) runs every target for that long instead, for longer local runs.
FUZZTIME ?=
BIN := bin
# The worked example app: a module of its own (the root's ./... does not reach it), built,
# vetted and tested by the targets below as well.
EXAMPLE := examples/dealnotes

.PHONY: help build build-local test unit fuzz lint lint-template bench bench-refresh bench-kms run serve sim clean deploy outputs new-app \
	build-CallbackFunction build-RefresherFunction build-ApiCallFunction build-WebhooksFunction

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 24

build: ## build every function as bin/<name>/bootstrap for AWS (linux/arm64), and the example app's as $(EXAMPLE)/bin/<name>/bootstrap
	@for f in $(FUNCTIONS); do \
		echo "build $$f ($(LAMBDA_ARCH))"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_ARCH) $(GO) build $(GOFLAGS_LAMBDA) -o $(BIN)/$$f/bootstrap ./functions/$$f || exit 1; \
	done
	@$(MAKE) --no-print-directory -C $(EXAMPLE) build LAMBDA_ARCH=$(LAMBDA_ARCH) GO=$(GO)

build-local: ## build every function for this machine, to run under the Runtime Interface Emulator
	@$(MAKE) --no-print-directory build LAMBDA_ARCH=$$($(GO) env GOARCH) BIN=$(BIN)/local

# Targets for SAM's `BuildMethod: makefile`: SAM sets ARTIFACTS_DIR.
build-CallbackFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_ARCH) $(GO) build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap ./functions/callback
build-RefresherFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_ARCH) $(GO) build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap ./functions/refresher
build-ApiCallFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_ARCH) $(GO) build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap ./functions/apicall
build-WebhooksFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_ARCH) $(GO) build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap ./functions/webhooks

# Deploying: samconfig.toml holds the stack name and settings (no secrets). GUIDED=1 the first
# time asks for them (sam deploy --guided). STACK overrides the stack name.
deploy: ## sam build + sam deploy (samconfig.toml; GUIDED=1 the first time), then the URLs for Developer Hub
	@command -v sam >/dev/null || { echo "sam not found: install the AWS SAM CLI (docs/deploy.md)"; exit 1; }
	sam build
	sam deploy $(if $(GUIDED),--guided) $(if $(STACK),--stack-name $(STACK))
	@$(MAKE) --no-print-directory outputs

outputs: ## the deployed stack's outputs: CallbackURL for Developer Hub, InstallURL, SetupCommand, ...
	@command -v sam >/dev/null || { echo "sam not found: install the AWS SAM CLI (docs/deploy.md)"; exit 1; }
	sam list stack-outputs $(if $(STACK),--stack-name $(STACK))
	@echo "Next: paste CallbackURL into Developer Hub (Callback URL), then run SetupCommand with the app's Client ID and secret."

test: lint lint-template build unit fuzz ## everything CI runs: lint, template check, arm64 build, tests, fuzz smoke

unit: ## go test, race detector on, nothing cached (the kit, then the example app's module)
	$(GO) test -race -count=1 ./...
	cd $(EXAMPLE) && $(GO) test -race -count=1 ./...

fuzz: ## run each fuzz target for its execution budget (or for FUZZTIME when set, e.g. FUZZTIME=60s)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; budget=$(if $(FUZZTIME),$(FUZZTIME),$${rest#*:}x); \
	  echo "$(GO) test -run='^\$$' -fuzz='^$$name\$$' -fuzztime=$$budget $$pkg"; \
	  $(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$$budget $$pkg; \
	done

lint: ## gofmt, go vet, staticcheck, go.mod tidy
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff
	cd $(EXAMPLE) && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./... && $(GO) mod tidy -diff

lint-template: ## cfn-lint template.yaml
	@command -v cfn-lint >/dev/null || { echo "cfn-lint not found: pip install cfn-lint"; exit 1; }
	cfn-lint template.yaml

run: ## the walk-through locally: moto + simulator + the example app's bootstraps under the emulator
	$(GO) run ./cmd/pdlocal -app $(EXAMPLE) $(ARGS)

serve: ## like run, then keep the stack up (gateway :8080, simulator :8787) until Ctrl-C
	$(GO) run ./cmd/pdlocal -app $(EXAMPLE) -serve $(ARGS)

sim: ## the Pipedrive simulator alone on 127.0.0.1:8787
	$(GO) run ./cmd/pdsim $(ARGS)

bench: ## benchmarks with allocations
	$(GO) test -run='^$$' -bench=. -benchmem ./...

bench-refresh: ## refresh benchmark (minutes; not part of test): one line per scenario, compared across commits
	$(GO) run ./cmd/refreshbench $(ARGS)

bench-kms: ## KMS requests per refresh and per job (tokens sealed under TokensKey), against moto
	$(GO) test -run='^$$' -bench=KMSRequests -benchtime=20x ./internal/tokencrypt/

new-app: ## start an app from the example: make new-app DIR=../myapp MODULE=example.com/myapp
	@test -n "$(DIR)" -a -n "$(MODULE)" || { echo "usage: make new-app DIR=../myapp MODULE=example.com/myapp"; exit 1; }
	@test ! -e "$(DIR)" || { echo "$(DIR) exists"; exit 1; }
	mkdir -p $(DIR)
	cd $(EXAMPLE) && git ls-files -co --exclude-standard | grep -v -e '^bin/' -e '^\.local/' | tar -cf - -T - | tar -xf - -C $(abspath $(DIR))
	cd $(DIR) && grep -rl 'github.com/pdkit/pipedrive-lambda-kit/examples/dealnotes' . | xargs sed -i 's#github.com/pdkit/pipedrive-lambda-kit/examples/dealnotes#$(MODULE)#g'
	cd $(DIR) && sed -i 's#=> \.\./\.\.$$#=> $(CURDIR)#' go.mod
	@echo "new app in $(DIR) (module $(MODULE)); its go.mod uses this checkout of the kit: replace it with a released version (go get github.com/pdkit/pipedrive-lambda-kit@latest) when you like"

clean:
	rm -rf $(BIN) .aws-sam .local
	$(MAKE) --no-print-directory -C $(EXAMPLE) clean
