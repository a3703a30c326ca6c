#!/usr/bin/env bash
# Create an inventory's encrypted secrets file with fresh random values.
#
#   files/new-vault.sh inventories/prod
#
# Writes INVENTORY/group_vars/all/vault.yml, encrypted with ansible-vault
# (it asks for the new vault password, or uses ANSIBLE_VAULT_PASSWORD_FILE).
# Refuses to overwrite an existing file. Values are never printed.
set -euo pipefail

inventory=${1:?usage: $0 INVENTORY_DIR}
vault="$inventory/group_vars/all/vault.yml"
[[ -e $vault ]] && { echo "$vault exists; edit it with: ansible-vault edit $vault" >&2; exit 1; }
mkdir -p "$(dirname "$vault")"

secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }

umask 077
plain="$(mktemp)"
trap 'rm -f "$plain"' EXIT
cat > "$plain" <<YAML
---
# Secrets for $inventory. Edit with: ansible-vault edit $vault
vault_redis_password: "$(secret)"
vault_redis_celery_password: "$(secret)"
vault_django_secret_key: "$(secret)$(secret)"
vault_app_api_token: "$(secret)"
vault_db_password: "$(secret)"
vault_flower_password: "$(secret)"
YAML
ansible-vault encrypt --output "$vault" "$plain"
echo "wrote $vault (encrypted)"
