#!/bin/sh
# One entry point for a fresh Debian / Raspberry Pi OS machine that has only python3:
#   ./run.sh demo   set everything up and start the demo
#   ./run.sh test   set everything up and run every test (what CI runs)
set -eu
cd "$(dirname "$0")"

usage() { echo "usage: ./run.sh demo|test [args...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
what=$1; shift

# System packages: Debian splits venv out of python3; the browser tests need Debian's Chromium.
apt_missing=""
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_missing="python3-venv"
if [ "$what" = test ]; then
    [ -x /usr/bin/chromium ] || apt_missing="$apt_missing chromium chromium-driver"
    # Emoji in screenshots and in the picker; without it Chromium draws empty boxes.
    [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || apt_missing="$apt_missing fonts-noto-color-emoji"
    # Real third-party clients the simulator must satisfy (tests/realclients/).
    [ -x /usr/bin/gammu ] || apt_missing="$apt_missing gammu"
    [ -x /usr/sbin/smsd ] || apt_missing="$apt_missing smstools"
fi
if [ -n "$apt_missing" ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    echo "installing Debian packages:$apt_missing" >&2
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $apt_missing
fi

# The project's own virtual environment, reinstalled when pyproject.toml changes.
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    # The daemon runs with -OO (no docstrings: 2 MB less) when these files exist (gateway/memory.py).
    .venv/bin/python -OO -m compileall -q -j0 .venv/lib gateway > /dev/null ||
        echo "run.sh: some files did not compile for -OO; the gateway loads them unoptimized" >&2
    touch .venv/.installed
fi

case "$what" in
    demo)
        exec .venv/bin/gateway demo "$@"
        ;;
    test)
        .venv/bin/ruff check .
        .venv/bin/ruff format --check .
        exec .venv/bin/python -m pytest "$@"
        ;;
    *) usage ;;
esac
