#!/usr/bin/env bash
# Build the local systemd test-host images (debian12, debian13) that the
# Molecule scenarios boot. No container registry is needed: the root
# filesystem comes from Debian's package mirror through debootstrap and is
# turned into an image with `docker import`.
#
#   molecule/images/build.sh              # both images, reusing up-to-date ones
#   molecule/images/build.sh debian13     # one image
#   FORCE=1 molecule/images/build.sh      # rebuild even if up to date
#
# An image is reused only when its `bundle.recipe` label matches the hash of
# this script and its inputs, so editing the recipe rebuilds it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages=(
  systemd systemd-sysv dbus
  python3 python3-apt sudo
  ca-certificates iproute2 procps
  # The runbook's SSH tunnel to Flower is tested through the host's sshd.
  openssh-server
)

declare -A suite=([debian12]=bookworm [debian13]=trixie)

recipe_hash() {
  {
    cat "$here/build.sh"
    find "$here/rootfs" -type f | sort | xargs cat
    cat /usr/local/share/ca-certificates/*.crt 2> /dev/null || true
  } | sha256sum | cut -c1-16
}

build() {
  local name=$1 release=${suite[$1]:-}
  [[ -n $release ]] || { echo "unknown image '$name' (want: ${!suite[*]})" >&2; return 2; }
  local want; want="$(recipe_hash)"
  local have; have="$(docker image inspect -f '{{ index .Config.Labels "bundle.recipe" }}' "$name" 2>/dev/null || true)"
  if [[ $have == "$want" && -z ${FORCE:-} ]]; then
    echo "$name: up to date (recipe $want)"
    return 0
  fi

  local root; root="$(mktemp -d "/var/tmp/$name.XXXXXX")"
  trap 'rm -rf "$root"' RETURN
  echo "$name: debootstrap $release into $root"
  debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
    "$release" "$root" "$mirror" > "$root.log" 2>&1 \
    || { tail -n 30 "$root.log" >&2; rm -f "$root.log"; return 1; }
  rm -f "$root.log"

  # Trust the host's extra CAs (a TLS-intercepting proxy, say), for apt and for
  # pip inside virtualenvs, which ignores the system store unless told.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' > /dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates > /dev/null
  fi
  cp -a "$here/rootfs/." "$root/"

  # A container gets its machine-id from systemd at boot; units that manage
  # hardware or the console have nothing to do here.
  : > "$root/etc/machine-id"
  for unit in getty@tty1.service console-getty.service systemd-udevd.service \
              systemd-udev-trigger.service systemd-remount-fs.service \
              systemd-firstboot.service sys-kernel-config.mount; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  chroot "$root" apt-get clean

  echo "$name: importing"
  tar -C "$root" -c . | docker import \
    -c 'CMD ["/lib/systemd/systemd"]' \
    -c 'ENV container=docker' \
    -c "LABEL bundle.recipe=$want" \
    - "$name" > /dev/null
  echo "$name: built (recipe $want)"
}

if [[ $# -eq 0 ]]; then set -- debian12 debian13; fi
for image in "$@"; do build "$image"; done
