# Two commands on a fresh machine (see README): `make dev` runs the whole system, `make test` runs the
# whole test suite. Each first installs what is missing: npm dependencies here; the Kafka jars and the
# FerretDB binary are fetched, built and cached by infra/ when first needed.
.PHONY: dev test demo sms install build infra-up infra-down infra-status infra-wipe clean

NPM_STAMP := node_modules/.install-stamp
MANIFESTS := package.json package-lock.json $(wildcard apps/*/package.json packages/*/package.json) infra/package.json $(wildcard patches/*.patch)

$(NPM_STAMP): $(MANIFESTS)
	npm ci --no-audit --no-fund
	@touch $@

install: $(NPM_STAMP)

build: install
	npx turbo run build

dev: install
	node scripts/dev.mjs

test: install
	node scripts/test.mjs

# With `make dev` running in another terminal: drives it through the gateway over the whole lifecycle.
demo: install
	npx turbo run build --filter=@pipp/demo --output-logs=errors-only
	node packages/demo/dist/cli.js

# With `make dev` running: the last SMS (one-time codes) identity recorded in its local sink.
sms: install
	node scripts/sms.mjs

infra-up: install
	node infra/cli.mjs up dev

infra-down: install
	node infra/cli.mjs down dev

infra-status: install
	node infra/cli.mjs status dev

infra-wipe: install
	node infra/cli.mjs wipe dev

clean:
	rm -rf node_modules apps/*/dist packages/*/dist infra/types .turbo
