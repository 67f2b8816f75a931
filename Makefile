# furui — one command per habit: make demo, make test, make check, make bench.
SHELL := /bin/bash
CARGO ?= cargo
# libxdp-sys (xdp-tools) and the BPF skeleton look for clang/llc; Debian
# ships them versioned.
export CLANG ?= clang-19
export LLC ?= llc-19

# Everything the build, the tests, the demo and the bench need. Never
# Debian's libbpf-dev: libxdp-sys's configure would pick up its old 1.1.
DEPS := clang-19 llvm-19 libelf-dev zlib1g-dev libpcap-dev m4 pkg-config \
        bpftool iproute2 ethtool util-linux procps \
        tcpdump netsniff-ng softflowd pmacct nfdump nats-server tshark \
        chromium python3-venv openssh-client openssh-server
# Installed without recommends (prometheus would pull in node-exporter).
# Debian's policy-rc.d keeps the packaged service from starting; the tests
# start their own Prometheus on loopback in a private namespace.
DEPS_NO_RECOMMENDS := prometheus

# Only `make bench` needs these (callgrind's instruction counts).
BENCH_DEPS := valgrind

# The OASIS reference TAXII 2.1 server the feed tests pull from (PyPI,
# into a virtualenv; pinned).
MEDALLION_VERSION := 3.0.0
PYDEPS := target/venv/.medallion-$(MEDALLION_VERSION)

FURUI := target/release/furui
TEST_FEATURES := --features fault-injection

.PHONY: deps build check test demo bench fuzz deb clean

$(PYDEPS):
	@mkdir -p target
	python3 -m venv target/venv
	target/venv/bin/pip install -q medallion==$(MEDALLION_VERSION)
	@touch $@

deps:
	@if ! dpkg -s $(DEPS) $(DEPS_NO_RECOMMENDS) >/dev/null 2>&1; then \
	  echo "installing build and test dependencies"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEPS) >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEPS_NO_RECOMMENDS) >/dev/null; \
	fi

build: deps
	$(CARGO) build --release --bins --features testkit

check: deps build
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets $(TEST_FEATURES) -- -D warnings
	@for f in config/*.toml; do $(FURUI) check-config $$f || exit 2; done
	$(FURUI) check-rules config/rules
	$(FURUI) check-rules config/feeds
	promtool check rules deploy/prometheus/furui-alerts.yml
	promtool check config deploy/prometheus/prometheus.yml
	promtool test rules deploy/prometheus/furui-alerts.test.yml

test: deps build $(PYDEPS)
	@if [ "$$(id -u)" != 0 ]; then echo "make test needs root (BPF, XDP, network namespaces)"; exit 1; fi
	@for f in config/*.toml; do $(FURUI) check-config $$f || exit 2; done
	$(FURUI) check-rules config/rules
	$(FURUI) check-rules config/feeds
	@mkdir -p target
	set -o pipefail; $(CARGO) test $(TEST_FEATURES) --no-fail-fast 2>&1 | tee target/test.log
	@awk '/^test result:/ {p+=$$4; f+=$$6; i+=$$8} END {printf "total: %d passed, %d failed, %d skipped\n", p, f, i}' target/test.log

demo: deps build
	bash deploy/demo.sh

bench: deps build
	@dpkg -s $(BENCH_DEPS) >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_DEPS) >/dev/null
	$(CARGO) bench --bench parse_erase
	bash deploy/bench/callgrind.sh
	bash deploy/bench/xdp-cost.sh
	bash deploy/bench/veth-rig.sh
	bash deploy/bench/compare.sh

deb: build
	bash deploy/deb/build.sh

fuzz: deps
	bash deploy/fuzz.sh

clean:
	$(CARGO) clean
