#!/usr/bin/env bash
# Debian packages the product and its tests use: ffmpeg (openai-whisper decodes files with it), sox
# (eval/bench_transcription.py makes the 8 kHz telephone band of the real clips),
# Chromium + ChromeDriver (the browser tests) and the PostgreSQL server binaries (the review-store tests
# start their own throwaway cluster), SIPp and Kamailio (the SIPREC tests). Installs only what is missing.
set -euo pipefail
need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v sox >/dev/null 2>&1 || need+=(sox)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# A CJK font, or Chinese renders as boxes in the browser screenshots.
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-wqy-microhei)
# SIPp drives the SIPREC tests and eval/bench_siprec.py as a recording client.
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
# Kamailio spreads SIPREC sessions over two recording servers in tests/test_siprec_kamailio.py.
[ -x /usr/sbin/kamailio ] || need+=(kamailio)
# Debian keeps the server outside PATH, under /usr/lib/postgresql/<major>/bin.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "missing system packages: ${need[*]}; install them with apt-get (needs root)" >&2
  exit 1
fi
echo "installing system packages: ${need[*]}" >&2
if [[ " ${need[*]} " == *" postgresql "* ]]; then
  # No default "main" cluster: it would run as a system service on port 5432 that nothing here uses.
  $SUDO mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = off" | $SUDO tee /etc/postgresql-common/createcluster.d/no-main-cluster.conf >/dev/null
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
