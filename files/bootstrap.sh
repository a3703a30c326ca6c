#!/usr/bin/env bash
# Prepare this Debian/Ubuntu machine (as root) for the sandbox and the tests:
# install what is missing and start the Docker engine. `make sandbox` and
# .ci/run both call it; it changes nothing on a machine that is ready.
#
#   files/bootstrap.sh             what `make sandbox` needs
#   files/bootstrap.sh --tests     also what the app's tests need
#   files/bootstrap.sh --browser   also Chromium for `make sandbox-test`
set -euo pipefail

log() { printf '=== %s\n' "$*"; }

# command to look for, then the Debian package that provides it
needs=(
  dockerd docker.io
  debootstrap debootstrap
  make make
  # The app role copies the project to hosts with rsync (ansible.posix.synchronize).
  rsync rsync
)
for option in "$@"; do
  case $option in
    # The sample app's tests start their own redis-server on a spare port.
    # Flower's SSH-tunnel test opens a tunnel with the OpenSSH client.
    --tests) needs+=(redis-server redis-server ssh openssh-client) ;;
    # Headless Chromium and its driver, from Debian: the browser test.
    --browser) needs+=(chromium chromium chromedriver chromium-driver) ;;
    *) echo "usage: $0 [--tests] [--browser]" >&2; exit 2 ;;
  esac
done

missing=()
for ((i = 0; i < ${#needs[@]}; i += 2)); do
  command -v "${needs[i]}" > /dev/null || missing+=("${needs[i + 1]}")
done
# make install creates a virtualenv.
python3 -c 'import ensurepip, venv' 2> /dev/null || missing+=(python3-venv)

if ((${#missing[@]})); then
  ((EUID == 0)) || { echo "missing ${missing[*]}: run $0 as root, or install them" >&2; exit 1; }
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
fi

if ! docker info > /dev/null 2>&1; then
  ((EUID == 0)) || { echo "the Docker engine is not running: start it (as root: $0)" >&2; exit 1; }
  log "starting dockerd (log: /var/log/dockerd-bundle.log)"
  if [[ -d /run/systemd/system ]] && systemctl start docker 2> /dev/null; then :; else
    nohup dockerd > /var/log/dockerd-bundle.log 2>&1 &
  fi
  for _ in $(seq 60); do docker info > /dev/null 2>&1 && break; sleep 1; done
  docker info > /dev/null 2>&1 || { tail -n 50 /var/log/dockerd-bundle.log 2> /dev/null; exit 1; }
fi
