#!/usr/bin/env bash
# Debian's chromium for the HTML report test (tests/reporting/test_html.py), installed like SLURM is.
#
#   scripts/chromium-local.sh install   # apt-get installs chromium if it is missing (~30 s, ~300 MB)
#   scripts/chromium-local.sh path      # prints the browser's path, exit 1 when missing
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
case "${1:-}" in
    install)
        if command -v chromium >/dev/null; then exit 0; fi
        echo "chromium-local: installing chromium (Debian package)"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null ;;
    path) command -v chromium ;;
    *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
