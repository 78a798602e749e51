#!/bin/sh
# Debian's Chromium for the report's browser test (tests/gp_loss/test_report_html.py); a no-op
# where it is already installed. Needs root or sudo (CI runs as root).
set -e
command -v chromium >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
