# The two commands a newcomer needs: `make run` and `make test`.
# Everything else here is what those two are made of.

GO             ?= go
RUN_DIR        ?= .run
CLOUD_HTTP     ?= 127.0.0.1:8080
APPLIANCE_HTTP ?= 127.0.0.1:8090
HIS_MLLP       ?= 127.0.0.1:2575
HIS_HTTP       ?= 127.0.0.1:8095
HIS_LISTEN     ?= 127.0.0.1:2576
PRINTER_TCP    ?= 127.0.0.1:9100
PRINTER_HTTP   ?= 127.0.0.1:9101
INSURANCE_HTTP ?= 127.0.0.1:8096
PAY_HTTP       ?= 127.0.0.1:8097
EINVOICE_HTTP  ?= 127.0.0.1:8099
VERSION        ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT         ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS        := -s -w -X ihos.Version=$(VERSION) -X ihos.Commit=$(COMMIT)
# Pure Go everywhere: the same build runs on the hospital's Windows and Linux servers.
export CGO_ENABLED ?= 0

.PHONY: all build run test check fmt vet crossbuild browser unit bench soak clean

all: build

## build: compile bin/ihos-appliance, bin/ihos-cloud and the simulators (HIS, ticket printer, insurance, payment channel, mobile insurance payment, e-invoice)
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ihos-appliance ./appliance/cmd/ihos-appliance
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ihos-cloud ./cloud/cmd/ihos-cloud
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ihos-his-sim ./his/cmd/ihos-his-sim
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ihos-printer-sim ./drivers/printersim/cmd/ihos-printer-sim
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ihos-insurance-sim ./insurance/cmd/ihos-insurance-sim
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ihos-pay-sim ./paychannel/cmd/ihos-pay-sim
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ihos-mobilepay-sim ./insurance/cmd/ihos-mobilepay-sim
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ihos-einvoice-sim ./einvoice/cmd/ihos-einvoice-sim
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ihos-sms-sim ./sms/cmd/ihos-sms-sim
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ihos-idverify-sim ./idverify/cmd/ihos-idverify-sim

## run: build, then start cloud + appliance + the simulators with demo data in $(RUN_DIR) (Ctrl-C stops them)
run: build
	RUN_DIR='$(RUN_DIR)' CLOUD_HTTP='$(CLOUD_HTTP)' APPLIANCE_HTTP='$(APPLIANCE_HTTP)' \
	  HIS_MLLP='$(HIS_MLLP)' HIS_HTTP='$(HIS_HTTP)' HIS_LISTEN='$(HIS_LISTEN)' \
	  PRINTER_TCP='$(PRINTER_TCP)' PRINTER_HTTP='$(PRINTER_HTTP)' INSURANCE_HTTP='$(INSURANCE_HTTP)' PAY_HTTP='$(PAY_HTTP)' EINVOICE_HTTP='$(EINVOICE_HTTP)' scripts/run

## test: formatting, vet, cross builds, and every test (fuzz seeds, browser, MariaDB when IHOS_MYSQL_DSN is set)
test: check crossbuild browser unit

check: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## crossbuild: the Windows and Linux (amd64, arm64) builds hospitals install, and the gousb build
crossbuild:
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build ./...
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./...
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build ./...
	GO=$(GO) scripts/gousb-build

## browser: install Debian's chromium for the browser tests when it is missing
browser:
	@scripts/install-chromium || { [ "$$CI" != true ] && echo "warning: chromium not installed; browser tests will be skipped"; }

unit:
	$(GO) test -count=1 -timeout 12m ./...

## soak: the long runs: 10,000 changes on each side of a partition, the crash tests again
soak:
	IHOS_PARTITION_CHANGES=10000 $(GO) test -count=1 -timeout 30m -run 'Partition|Crash' -v ./e2e/

## bench: the performance figures of docs/benchmarks.md (several minutes)
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./...
	$(GO) test -run '^$$' -bench 'RenderReceipt' -benchtime 3s -cpu 1 -benchmem ./tickets/ ./drivers/ticketimage/
	$(GO) test -run '^$$' -bench 'PrintQueueOverhead' -benchtime 3000x ./printing/
	$(GO) test -run '^$$' -bench 'PayThroughChannel' -benchtime 2000x -timeout 20m ./cloud/
	$(GO) test -run '^$$' -bench 'ClientSign' ./paychannel/
	$(GO) test -run '^$$' -bench 'BookingAtRelease' -benchtime 4000x -timeout 20m ./cloud/
	$(GO) test -run '^$$' -bench 'Book$$' -benchtime 5000x ./booking/
	$(GO) test -run '^$$' -bench 'MessageDelivery' -benchtime 3000x -timeout 20m ./cloud/

clean:
	rm -rf bin
