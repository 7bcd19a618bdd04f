# xcopy-agent — the two commands of the README are `make drill` and `make test`; both run
# `make setup` first, which installs and builds everything, and is quick when nothing changed.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Debian packages the project needs (libiscsi for the binding and its tools, tgt as a peer
# target, qemu-utils for qemu-img as a copy peer, qemu-system-x86 busybox-static cpio kmod for the
# LIO VM (docs/lio.md), libext2fs-dev e2fsprogs fdisk for the table of contents (docs/toc.md),
# netcat-openbsd to receive sd_notify datagrams in a test).
APT_PACKAGES := libiscsi-dev libiscsi-bin tgt qemu-utils qemu-block-extra qemu-system-x86 busybox-static cpio kmod libext2fs-dev e2fsprogs fdisk netcat-openbsd
# node-gyp builds against the headers of the Node.js that runs it (no download).
NODEDIR ?= $(shell for d in /usr /usr/local "$$(dirname "$$(dirname "$$(command -v node)")")"; do [ -f "$$d/include/node/node.h" ] && { echo "$$d"; break; }; done)

TS_SOURCES := $(shell find src bench -name '*.ts' 2>/dev/null)
NATIVE_SOURCES := native/binding.gyp $(wildcard native/src/*.cc native/src/*.h)
ADDON := native/build/Release/xcopy_native.node
# The benches' load generator (bench/iscsi-load.c: READ/WRITE(16) at a queue depth, on libiscsi).
ISCSI_LOAD := native/build/bench/iscsi-load

.PHONY: help setup apt drill test test-unit test-integration bench clean install uninstall

help:
	@echo "make drill   set up, then run the main job (see README)"
	@echo "make test    set up, then run every test"
	@echo "make setup   install Debian/npm packages, build the native addon and the TypeScript"
	@echo "make install install under PREFIX (/usr/local) with a systemd unit; make uninstall"

setup: apt node_modules/.package-lock.json $(ADDON) $(ISCSI_LOAD) dist/.built

apt:
	@bash scripts/apt-ensure.sh $(APT_PACKAGES)

# better-sqlite3 (the catalog, docs/catalog.md) would fetch a prebuilt binary from GitHub; CI
# reaches only the npm registry, so it compiles its bundled SQLite against the local headers.
node_modules/.package-lock.json: package.json package-lock.json
	npm_config_build_from_source=true $(if $(NODEDIR),npm_config_nodedir=$(NODEDIR)) npm ci --no-audit --no-fund
	@touch $@

$(ADDON): $(NATIVE_SOURCES) node_modules/.package-lock.json
	cd native && ../node_modules/.bin/node-gyp rebuild --silent $(if $(NODEDIR),--nodedir=$(NODEDIR))
	@test -f $@

$(ISCSI_LOAD): bench/iscsi-load.c $(ADDON)
	@mkdir -p $(dir $@)
	cc -O2 -Wall -Wextra -o $@ bench/iscsi-load.c -liscsi

dist/.built: $(TS_SOURCES) tsconfig.json tsconfig.build.json node_modules/.package-lock.json
	node_modules/.bin/tsc -p tsconfig.build.json
	@touch $@

drill: setup
	bash scripts/drill.sh

test: setup
	node_modules/.bin/tsc -p tsconfig.json --noEmit
	node_modules/.bin/jest --ci

test-unit: setup
	node_modules/.bin/jest --ci test/unit

test-integration: setup
	node_modules/.bin/jest --ci test/integration

bench: setup
	npm run bench:initiator

# README "Operating it": PREFIX (default /usr/local) and DESTDIR honoured.
install: setup
	bash scripts/install.sh install

uninstall:
	bash scripts/install.sh uninstall

clean:
	rm -rf dist native/build
