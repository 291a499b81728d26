# Pipedrive Lambda kit. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
FUNCTIONS := callback refresher apicall webhooks
# AWS runs the functions on Graviton; `make build-local` builds for this machine instead.
LAMBDA_ARCH ?= arm64
GOFLAGS_LAMBDA := -tags lambda.norpc -trimpath -ldflags='-s -w'
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 10s
BIN := bin

.PHONY: help build build-local test unit fuzz lint lint-template bench bench-refresh bench-kms run serve sim clean \
	build-CallbackFunction build-RefresherFunction build-ApiCallFunction build-WebhooksFunction

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 24

build: ## build every function as bin/<name>/bootstrap for AWS (linux/arm64)
	@for f in $(FUNCTIONS); do \
		echo "build $$f ($(LAMBDA_ARCH))"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_ARCH) $(GO) build $(GOFLAGS_LAMBDA) -o $(BIN)/$$f/bootstrap ./functions/$$f || exit 1; \
	done

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

test: lint lint-template build unit fuzz ## everything CI runs: lint, template check, arm64 build, tests, fuzz smoke

unit: ## go test, race detector on, nothing cached
	$(GO) test -race -count=1 ./...

fuzz: ## run each fuzz target for FUZZTIME
	$(GO) test -run='^$$' -fuzz='^FuzzClassifyAPI$$' -fuzztime=$(FUZZTIME) ./pkg/pderrors
	$(GO) test -run='^$$' -fuzz='^FuzzClassifyOAuth$$' -fuzztime=$(FUZZTIME) ./pkg/pderrors
	$(GO) test -run='^$$' -fuzz='^FuzzVerify$$' -fuzztime=$(FUZZTIME) ./internal/oauthstate
	$(GO) test -run='^$$' -fuzz='^FuzzVerifyBound$$' -fuzztime=$(FUZZTIME) ./internal/oauthstate
	$(GO) test -run='^$$' -fuzz='^FuzzUninstallBody$$' -fuzztime=$(FUZZTIME) ./functions/callback
	$(GO) test -run='^$$' -fuzz='^FuzzCallbackRequest$$' -fuzztime=$(FUZZTIME) ./functions/callback
	$(GO) test -run='^$$' -fuzz='^FuzzParseToken$$' -fuzztime=$(FUZZTIME) ./internal/pdoauth
	$(GO) test -run='^$$' -fuzz='^FuzzValidateAPIDomain$$' -fuzztime=$(FUZZTIME) ./internal/pdoauth
	$(GO) test -run='^$$' -fuzz='^FuzzMe$$' -fuzztime=$(FUZZTIME) ./internal/pdapi
	$(GO) test -run='^$$' -fuzz='^FuzzWebhooks$$' -fuzztime=$(FUZZTIME) ./internal/pdapi
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./internal/clientcreds
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./internal/webhook
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./internal/jobs
	$(GO) test -run='^$$' -fuzz='^FuzzAuthorized$$' -fuzztime=$(FUZZTIME) ./internal/webhook
	$(GO) test -run='^$$' -fuzz='^FuzzReceive$$' -fuzztime=$(FUZZTIME) ./functions/webhooks
	$(GO) test -run='^$$' -fuzz='^FuzzInput$$' -fuzztime=$(FUZZTIME) ./functions/refresher

lint: ## gofmt, go vet, staticcheck, go.mod tidy
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff

lint-template: ## cfn-lint template.yaml
	@command -v cfn-lint >/dev/null || { echo "cfn-lint not found: pip install cfn-lint"; exit 1; }
	cfn-lint template.yaml

run: ## the main job locally: moto + simulator + callback bootstrap under the emulator, one install flow
	$(GO) run ./cmd/pdlocal $(ARGS)

serve: ## like run, then keep the stack up (gateway :8080, simulator :8787) until Ctrl-C
	$(GO) run ./cmd/pdlocal -serve $(ARGS)

sim: ## the Pipedrive simulator alone on 127.0.0.1:8787
	$(GO) run ./cmd/pdsim $(ARGS)

bench: ## benchmarks with allocations
	$(GO) test -run='^$$' -bench=. -benchmem ./...

bench-refresh: ## refresh benchmark (minutes; not part of test): one line per scenario, compared across commits
	$(GO) run ./cmd/refreshbench $(ARGS)

bench-kms: ## KMS requests per refresh and per job (tokens sealed under TokensKey), against moto
	$(GO) test -run='^$$' -bench=KMSRequests -benchtime=20x ./internal/tokencrypt/

clean:
	rm -rf $(BIN) .aws-sam .local
