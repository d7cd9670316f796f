# scanagent build targets. `make test` is what CI runs (via .ci/run).
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X scanagent/internal/buildinfo.Version=$(VERSION) -X scanagent/internal/buildinfo.Commit=$(COMMIT)

.PHONY: all build test lint cross demo fuzz bench clean

all: lint test build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/scanagent ./cmd/scanagent

test:
	$(GO) test -race -count=1 ./...

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

cross:
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/windows-amd64/scanagent.exe ./cmd/scanagent
	CGO_ENABLED=0 GOOS=windows GOARCH=386   $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/windows-386/scanagent.exe ./cmd/scanagent
	CGO_ENABLED=0 GOOS=linux   GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/linux-amd64/scanagent ./cmd/scanagent
	CGO_ENABLED=0 GOOS=linux   GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/linux-arm64/scanagent ./cmd/scanagent

demo:
	./scripts/demo.sh

# Long fuzz runs (CI runs the seed corpora only, as part of `make test`).
FUZZTIME ?= 2m
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

bench:
	./scripts/bench.sh

clean:
	rm -rf bin dist
