#!/usr/bin/env bash
# The local sandbox: the whole stack in one systemd container on this
# machine, deployed by site.yml with inventories/sandbox, its web app and
# Flower published on 127.0.0.1. `make sandbox` runs files/bootstrap.sh (the
# Docker engine, debootstrap), make install, then this with its venv on PATH:
#
#   files/sandbox.sh up        create or update it, then prove it works
#   files/sandbox.sh destroy   remove the container (the secrets file stays)
#
# Environment: SANDBOX_DISTRO (debian13, the default, or debian12), SANDBOX_WEB_PORT
# (8000), SANDBOX_FLOWER_PORT (5555).
set -euo pipefail
cd "$(dirname "$0")/.."

inventory=inventories/sandbox
container=djangoapp-sandbox
distro=${SANDBOX_DISTRO:-debian13}
web_port=${SANDBOX_WEB_PORT:-8000}
flower_port=${SANDBOX_FLOWER_PORT:-5555}
vault=$inventory/group_vars/all/vault.yml
# The container's address, from the inventory: the network is the /24 around it.
address=$(sed -n 's/^sandbox_address: *//p' "$inventory/group_vars/all/main.yml")
[[ $address =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.[0-9]+$ ]] || { echo "no sandbox_address in $inventory" >&2; exit 1; }
subnet=${BASH_REMATCH[1]}.0/24

step() { printf '\n\033[1m=== %s\033[0m\n' "$*"; }

up() {
  step "1/5 test-host image $distro (built once, about 3 minutes)"
  molecule/images/build.sh "$distro"

  step "2/5 secrets: $vault"
  if [[ -e $vault ]]; then
    echo "kept (delete it and re-run for new ones)"
  else
    files/new-vault.sh --plain "$inventory" vault_admin_password
  fi

  step "3/5 container $container"
  # The container is labelled with its vault's checksum: a sandbox deployed
  # with other secrets (a new vault, another clone) is made again, since its
  # Redis, database and units hold the old ones.
  secrets=$(sha256sum "$vault" | cut -c1-64)
  if [[ $(docker inspect -f '{{.State.Running}} {{index .Config.Labels "djangoapp.secrets"}}' "$container" 2> /dev/null) \
    == "true $secrets" ]]; then
    echo "running"
  else
    docker rm -f "$container" > /dev/null 2>&1 || true
    docker network inspect "$container" > /dev/null 2>&1 \
      || docker network create --subnet "$subnet" "$container" > /dev/null
    # The options that boot systemd in a container here (as the Molecule
    # scenarios); the ports are published on loopback only.
    docker run --detach --name "$container" --hostname sandbox1 --label "djangoapp.secrets=$secrets" \
      --cgroupns host --cap-add SYS_ADMIN --cap-add NET_ADMIN \
      --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
      --volume /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
      --network "$container" --ip "$address" \
      --publish "127.0.0.1:$web_port:8000" --publish "127.0.0.1:$flower_port:5555" \
      "$distro" /lib/systemd/systemd > /dev/null
    for _ in $(seq 30); do
      state=$(docker exec "$container" systemctl is-system-running 2> /dev/null || true)
      [[ $state == running || $state == degraded ]] && break
      sleep 1
    done
    echo "started ($distro, systemd $state)"
  fi

  step "4/5 ansible-playbook site.yml -i $inventory"
  ansible-playbook site.yml -i "$inventory"

  step "5/5 proof: ansible-playbook playbooks/check.yml, then a task through the published ports"
  ansible-playbook playbooks/check.yml -i "$inventory"
  python3 files/sandbox_prove.py --vault "$vault" --container "$container" \
    --web "http://127.0.0.1:$web_port" --flower "http://127.0.0.1:$flower_port"
}

destroy() {
  docker rm -f "$container" > /dev/null 2>&1 && echo "removed $container" || echo "no container $container"
  docker network rm "$container" > /dev/null 2>&1 || true
  echo "kept $vault (delete it for new secrets next time)"
}

case ${1:-} in
  up) up ;;
  destroy) destroy ;;
  *) echo "usage: $0 up|destroy" >&2; exit 2 ;;
esac
