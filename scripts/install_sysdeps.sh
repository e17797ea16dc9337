#!/usr/bin/env bash
# System packages the pipeline and its tests need: ffmpeg (test media, remuxing) and espeak-ng (speech);
# with --test also chromium, the browser tests/test_web_ui.py drives (Debian's, never a downloaded one).
# with --devset the dev set's packages (docs/DEVSET.md): GCompris' photos and sounds, Noto Color Emoji,
# Unicode's emoji-test.txt, festival with two diphone voices.
# Installs them with apt when missing; does nothing when they are already there.
set -euo pipefail
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
if [ "${1:-}" = "--test" ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
fi
if [ "${1:-}" = "--devset" ]; then
  for pkg in gcompris-qt-data fonts-noto-color-emoji unicode-data festival festvox-kallpc16k festvox-kdlpc16k; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "reelsense needs: ${missing[*]} (apt-get install ${missing[*]}); run as root or install them" >&2
    exit 1
  fi
else SUDO=; fi
echo "installing ${missing[*]} with apt-get" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
