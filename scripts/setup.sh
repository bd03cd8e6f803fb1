#!/usr/bin/env bash
# Installs every Debian 12 package that Suanli's build and test suite need.
# Idempotent: prints nothing and touches nothing when all packages are present.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  prometheus-cpp-dev libcurl4-openssl-dev libyaml-cpp-dev librocksdb-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev libsnappy-dev libprotobuf-dev protobuf-compiler
  libboost-dev libsnmp-dev  # net-snmp: the agent's router links (agent/collectors/network/snmp_*)
  nlohmann-json3-dev rapidjson-dev libcli11-dev  # JSON read / written; suanlictl's subcommands
  libssl-dev clang libclang-rt-14-dev  # TLS (OpenSSL 3); fuzz/ and sanitizer builds (libFuzzer)
  # test-time servers and tools: real Prometheus (with promtool) and Alertmanager
  prometheus prometheus-alertmanager python3 python3-snappy curl
  snmpd  # a real SNMP agent for the router-link tests
  chromium fonts-dejavu-core  # a real browser (headless) for the status page test
  # Debian packages (cpack -G DEB, tests/package): dpkg-shlibdeps, file, lintian
  dpkg-dev file lintian
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: missing packages: ${missing[*]}; run as root (or install them yourself)" >&2
  exit 1
fi
echo "setup.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends keeps the Prometheus packages from pulling in node-exporter etc.;
# policy-rc.d stops Debian's postinst from starting system-wide services that would hold
# the default ports (tests start their own servers on random loopback ports).
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.suanli
chmod +x /usr/sbin/policy-rc.d.suanli
restore=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  cp /usr/sbin/policy-rc.d.suanli /usr/sbin/policy-rc.d; restore=1
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ -n "$restore" ] && rm -f /usr/sbin/policy-rc.d
rm -f /usr/sbin/policy-rc.d.suanli
