#!/usr/bin/env bash
# Debian packages installed on this machine that a new machine of the project's kind would not
# have after scripts/setup.sh: neither in the machine's image (../shared/tools/image-packages.txt)
# nor brought in by a package setup.sh installs (APT_PKGS and everything they Depend or
# Pre-Depend on, recursively: what `apt-get install --no-install-recommends` brings).
# Exit 1 when there are any. Read by .ci/run beside apt-drift.sh (why both: see there).
# Where a dependency offers alternatives (a | b), every alternative counts as brought in.
set -euo pipefail
cd "$(dirname "$0")/.."
img=../shared/tools/image-packages.txt
if [ ! -f "$img" ] || ! command -v apt-cache >/dev/null || ! command -v dpkg-query >/dev/null; then
  echo "apt-extra: no $img or no apt on this machine; skipped"; exit 0
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
{ cat "$img"; bash scripts/setup.sh --list-apt; } | sed 's/:.*//' | sort -u > "$tmp/wanted"
# apt-cache prints each package of the closure on a line of its own (virtual ones in <>);
# names it does not know (an image package no archive has) are simply not expanded.
{ xargs -r apt-cache depends --recurse --important --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances < "$tmp/wanted" 2>/dev/null || true; } |
  grep -v '^ ' | tr -d '<>' | sed 's/:.*//' | cat - "$tmp/wanted" | sort -u > "$tmp/closure"
dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" {print $2}' | sed 's/:.*//' |
  sort -u > "$tmp/installed"
extra="$(comm -23 "$tmp/installed" "$tmp/closure")"
if [ -z "$extra" ]; then
  echo "apt-extra: every installed package is in the machine image or brought in by scripts/setup.sh"; exit 0
fi
echo "apt-extra: installed here, but neither in the machine image nor brought in by scripts/setup.sh:"
printf '  %s\n' $extra
echo "A new machine will not have them: if the build or tests use one, add it to APT_PKGS in"
echo "scripts/setup.sh; if none is used, remove them (apt-get remove) and re-run the tests to be sure."
exit 1
