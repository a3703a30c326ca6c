#!/usr/bin/env bash
# Create an inventory's secrets file with fresh random values.
#
#   files/new-vault.sh inventories/prod
#   files/new-vault.sh --plain inventories/sandbox vault_admin_password
#
# Writes INVENTORY/group_vars/all/vault.yml, encrypted with ansible-vault
# (it asks for the new vault password, or uses ANSIBLE_VAULT_PASSWORD_FILE).
# --plain leaves it unencrypted (mode 0600; for a local sandbox, never for
# real servers). Names after the inventory add more secrets. Refuses to
# overwrite an existing file. Values are never printed.
set -euo pipefail

plain=false
if [[ ${1:-} == --plain ]]; then plain=true; shift; fi
inventory=${1:?usage: $0 [--plain] INVENTORY_DIR [EXTRA_SECRET_NAME...]}
shift
vault="$inventory/group_vars/all/vault.yml"
[[ -e $vault ]] && { echo "$vault exists; edit it with: ansible-vault edit $vault" >&2; exit 1; }
mkdir -p "$(dirname "$vault")"

secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }

umask 077
draft="$(mktemp)"
trap 'rm -f "$draft"' EXIT
{
  cat <<YAML
---
# Secrets for $inventory (made by files/new-vault.sh).
vault_redis_password: "$(secret)"
vault_redis_celery_password: "$(secret)"
vault_django_secret_key: "$(secret)$(secret)"
vault_app_api_token: "$(secret)"
vault_db_password: "$(secret)"
vault_flower_password: "$(secret)"
YAML
  for name in "$@"; do
    [[ $name =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "not a variable name: $name" >&2; exit 1; }
    echo "$name: \"$(secret)\""
  done
} > "$draft"
if $plain; then
  mv "$draft" "$vault"
  echo "wrote $vault (not encrypted, mode 0600)"
else
  ansible-vault encrypt --output "$vault" "$draft"
  echo "wrote $vault (encrypted; edit it with: ansible-vault edit $vault)"
fi
