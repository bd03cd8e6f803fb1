#!/usr/bin/env bash
# Builds the Debian packages with cpack in BUILD_DIR (into a temporary folder) and checks them:
#   - lintian: any E: line fails the test (W: and I: lines are printed);
#   - contents: binary, unit, conffiles, copyright, changelog, man page; the unit's ExecStart,
#     --config.file and state folder agree with what the package installs and postinst creates;
#   - both packages unpacked with `dpkg-deb -x` into a scratch root. That runs no maintainer
#     script; the installed binaries run from there: --version, and --config.check of the
#     installed /etc/suanli/*.yml;
#   - maintainer scripts: `sh -n`, then postinst, prerm and postrm run with DPKG_ROOT at the
#     scratch root and a PATH of stubs that log their arguments (adduser, chown, systemctl,
#     deb-systemd-helper, ...), so nothing on this system changes; the log is checked.
# Usage: package_test.sh BUILD_DIR VERSION
set -euo pipefail

build=$(cd "$1" && pwd)
version=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/suanli-package-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

for tool in cpack dpkg-deb dpkg-shlibdeps lintian; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (scripts/setup.sh installs it)" >&2; exit 1; }
done

# --- cpack ------------------------------------------------------------------------------------
if ! cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1; then
  cat "$tmp/cpack.log" >&2
  echo "FAIL: cpack -G DEB" >&2
  exit 1
fi
arch=$(dpkg --print-architecture)
declare -A deb
for pkg in suanli-agent suanli-aggregator; do
  deb[$pkg]=$tmp/out/${pkg}_${version}_${arch}.deb
  [ -f "${deb[$pkg]}" ] || { ls -l "$tmp/out" >&2; echo "FAIL: no ${deb[$pkg]##*/}" >&2; exit 1; }
  ok "cpack wrote ${deb[$pkg]##*/} ($(stat -c %s "${deb[$pkg]}") bytes)"
done

# --- control fields ---------------------------------------------------------------------------
for pkg in suanli-agent suanli-aggregator; do
  depends=$(dpkg-deb -f "${deb[$pkg]}" Depends)
  echo "$pkg Depends: $depends"
  [[ $depends == *"libc6 ("* ]] || fail "$pkg: Depends lacks libc6 (dpkg-shlibdeps did not run?)"
  [[ $depends == *adduser* ]] || fail "$pkg: Depends lacks adduser (postinst calls it)"
  [ "$(dpkg-deb -f "${deb[$pkg]}" Version)" = "$version" ] || fail "$pkg: Version is not $version"
done

# --- lintian ----------------------------------------------------------------------------------
# lintian prints "running with root privileges is not recommended!" under CI's root; it only
# reads the packages.
# Exit status: 0 clean, 1 tags at or above --fail-on (error by default), 2 lintian failed.
rc=0
lintian --tag-display-limit 0 --display-info \
  "${deb[suanli-agent]}" "${deb[suanli-aggregator]}" >"$tmp/lintian.log" 2>&1 || rc=$?
if [ "$rc" -gt 1 ]; then
  cat "$tmp/lintian.log" >&2
  echo "FAIL: lintian exited $rc" >&2
  exit 1
fi
if grep -q '^E: ' "$tmp/lintian.log"; then
  grep '^E: ' "$tmp/lintian.log" >&2
  fail "lintian reports errors"
else
  ok "lintian: no errors ($(grep -c '^W: ' "$tmp/lintian.log" || true) warnings," \
     "$(grep -c '^I: ' "$tmp/lintian.log" || true) info)"
fi
grep -E '^[WI]: ' "$tmp/lintian.log" || true

# --- unpack into a scratch root (no maintainer scripts run) -----------------------------------
root=$tmp/root
mkdir -p "$root" "$tmp/control"
for pkg in suanli-agent suanli-aggregator; do
  dpkg-deb -x "${deb[$pkg]}" "$root"
  dpkg-deb -e "${deb[$pkg]}" "$tmp/control/$pkg"
done

declare -A conf=([suanli-agent]="agent.yml" [suanli-aggregator]="aggregator.yml web.yml")
declare -A state=([suanli-agent]=/var/lib/suanli/agent [suanli-aggregator]=/var/lib/suanli/aggregator)
for pkg in suanli-agent suanli-aggregator; do
  ctl=$tmp/control/$pkg
  for f in usr/bin/$pkg lib/systemd/system/$pkg.service usr/share/doc/$pkg/copyright \
           usr/share/doc/$pkg/changelog.gz usr/share/man/man1/$pkg.1.gz; do
    [ -f "$root/$f" ] || fail "$pkg: /$f not installed"
  done
  [ -x "$root/usr/bin/$pkg" ] || fail "$pkg: /usr/bin/$pkg not executable"
  for c in ${conf[$pkg]}; do
    [ -f "$root/etc/suanli/$c" ] || fail "$pkg: /etc/suanli/$c not installed"
    grep -qx "/etc/suanli/$c" "$ctl/conffiles" || fail "$pkg: /etc/suanli/$c is not a conffile"
  done
  [ "$(wc -l <"$ctl/conffiles")" -eq "$(wc -w <<<"${conf[$pkg]}")" ] ||
    fail "$pkg: conffiles holds more than its /etc/suanli files: $(cat "$ctl/conffiles")"
  for s in postinst prerm postrm; do
    [ -x "$ctl/$s" ] || fail "$pkg: no executable $s"
    sh -n "$ctl/$s" || fail "$pkg: $s: sh -n"
  done

  # The unit runs what the package installs, with the file it installs, in the folder that
  # postinst creates and postrm purges.
  unit=$root/lib/systemd/system/$pkg.service
  exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
  read -r exe _ <<<"$exec_start"
  [ -x "$root$exe" ] || fail "$pkg: unit's ExecStart runs $exe, not installed"
  cfg=$(grep -o -- '--config.file=[^ ]*' <<<"$exec_start" | cut -d= -f2)
  [ -n "$cfg" ] && [ -f "$root$cfg" ] || fail "$pkg: unit's --config.file ($cfg) not installed"
  grep -qx "StateDirectory=${state[$pkg]#/var/lib/}" "$unit" ||
    fail "$pkg: unit's StateDirectory is not ${state[$pkg]}"
  grep -qx "STATE_DIR=${state[$pkg]}" "$ctl/postinst" "$ctl/postrm" ||
    fail "$pkg: maintainer scripts' STATE_DIR is not ${state[$pkg]}"
  if grep -q -- '--storage.path=' <<<"$exec_start"; then
    [[ $exec_start == *"--storage.path=${state[$pkg]}"* ]] ||
      fail "$pkg: --storage.path is not ${state[$pkg]}"
  fi
  if grep -q '^WorkingDirectory=' "$unit"; then
    grep -qx "WorkingDirectory=${state[$pkg]}" "$unit" || fail "$pkg: WorkingDirectory is not ${state[$pkg]}"
  fi
  ok "$pkg: files, conffiles and unit paths"
done

# --- the installed binaries -------------------------------------------------------------------
cd "$tmp"
for pkg in suanli-agent suanli-aggregator; do
  out=$("$root/usr/bin/$pkg" --version 2>&1) || fail "$pkg --version exited $?"
  [ "$out" = "$pkg $version" ] || fail "$pkg --version printed '$out', expected '$pkg $version'"
  ok "$pkg --version: $out"
done
out=$("$root/usr/bin/suanlictl" --version 2>&1) || fail "suanlictl --version exited $?"
[ "$out" = "suanlictl $version" ] || fail "suanlictl --version printed '$out'"
[ -f "$root/usr/share/man/man1/suanlictl.1.gz" ] || fail "suanli-aggregator: suanlictl(1) not installed"
ok "suanlictl (in suanli-aggregator) --version: $out"
check() {
  local out
  if out=$("$@" 2>&1) && [[ $out == *"configuration OK"* ]]; then
    ok "${1##*/} ${*:2}: $out"
  else
    fail "${1##*/} ${*:2}: $out"
  fi
}
check "$root/usr/bin/suanli-agent" --config.check --config.file="$root/etc/suanli/agent.yml"
check "$root/usr/bin/suanli-aggregator" --config.check --config.file="$root/etc/suanli/aggregator.yml"
# web.yml is not checked: it names TLS certificates and token files that the operator provides
# (and no unit passes it until the operator does).

# --- maintainer scripts, run against the scratch root with logging stubs ----------------------
stubs=$tmp/stubs
log=$tmp/scripts.log
mkdir -p "$stubs"
for cmd in addgroup adduser install chown chmod deb-systemd-helper deb-systemd-invoke systemctl; do
  printf '#!/bin/sh\necho "%s $*" >>"$STUB_LOG"\n' "$cmd" >"$stubs/$cmd"
done
# getent: the suanli user and group exist once STUB_USER_EXISTS=1.
printf '#!/bin/sh\necho "getent $*" >>"$STUB_LOG"\n[ "$STUB_USER_EXISTS" = 1 ]\n' >"$stubs/getent"
# dpkg-statoverride --list: no override.
printf '#!/bin/sh\necho "dpkg-statoverride $*" >>"$STUB_LOG"\nexit 1\n' >"$stubs/dpkg-statoverride"
# rm and rmdir act, but only inside the scratch root.
for cmd in rm rmdir; do
  cat >"$stubs/$cmd" <<EOF
#!/bin/sh
echo "$cmd \$*" >>"\$STUB_LOG"
for a in "\$@"; do
  case "\$a" in -*) ;; "\$DPKG_ROOT"/*) ;; *) echo "$cmd outside DPKG_ROOT: \$a" >&2; exit 1 ;; esac
done
exec /bin/$cmd "\$@"
EOF
done
chmod +x "$stubs"/*
run_script() {  # PKG SCRIPT ARGS...: the script, only the stubs on PATH
  local pkg=$1 script=$2
  shift 2
  : >"$log"
  env -i PATH="$stubs" STUB_LOG="$log" DPKG_ROOT="$root" STUB_USER_EXISTS="${STUB_USER_EXISTS:-0}" \
    /bin/sh "$tmp/control/$pkg/$script" "$@" || fail "$pkg: $script $* exited $?"
}
expect() {  # PKG WHAT LINE: the log holds LINE
  grep -qxF -- "$3" "$log" || { fail "$1: $2: no '$3' in:"; sed 's/^/    /' "$log" >&2; }
}
expect_not() {
  if grep -q -- "$3" "$log"; then fail "$1: $2: unexpected '$3' in:"; sed 's/^/    /' "$log" >&2; fi
}
for pkg in suanli-agent suanli-aggregator; do
  unit=$pkg.service
  sd=${state[$pkg]}
  # First install: user, group and state folder are created, the unit enabled.
  run_script "$pkg" postinst configure
  expect "$pkg" "postinst configure" "addgroup --system --quiet suanli"
  expect "$pkg" "postinst configure" \
    "adduser --system --quiet --ingroup suanli --home /var/lib/suanli --no-create-home --shell /usr/sbin/nologin suanli"
  expect "$pkg" "postinst configure" "install -d -m 0755 -o root -g root $root/var/lib/suanli"
  expect "$pkg" "postinst configure" "install -d -m 0700 -o suanli -g suanli $root$sd"
  for c in ${conf[$pkg]}; do
    expect "$pkg" "postinst configure" "chown root:suanli $root/etc/suanli/$c"
    expect "$pkg" "postinst configure" "chmod 0640 $root/etc/suanli/$c"
  done
  expect "$pkg" "postinst configure" "deb-systemd-helper unmask $unit"
  expect "$pkg" "postinst configure" "deb-systemd-helper --quiet was-enabled $unit"
  expect "$pkg" "postinst configure" "deb-systemd-helper enable $unit"
  # Upgrade with the user and the folders in place: nothing is created again.
  mkdir -p "$root$sd"
  STUB_USER_EXISTS=1 run_script "$pkg" postinst configure 0.0.1
  expect_not "$pkg" "postinst configure (upgrade)" "^adduser\|^addgroup\|^install "
  # Removal stops and masks the unit and keeps the state; purge removes the state.
  touch "$root$sd/keep"
  run_script "$pkg" prerm remove
  run_script "$pkg" postrm remove
  expect "$pkg" "postrm remove" "deb-systemd-helper mask $unit"
  [ -f "$root$sd/keep" ] || fail "$pkg: postrm remove deleted $sd"
  run_script "$pkg" postrm purge
  expect "$pkg" "postrm purge" "deb-systemd-helper purge $unit"
  expect "$pkg" "postrm purge" "rm -rf $root$sd"
  expect_not "$pkg" "postrm purge" "deluser\|delgroup"
  [ ! -e "$root$sd" ] || fail "$pkg: postrm purge left $sd"
  ok "$pkg: maintainer scripts"
done
# The last package purged takes /var/lib/suanli with it.
[ ! -e "$root/var/lib/suanli" ] || fail "/var/lib/suanli left after both purges"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all package checks passed"
