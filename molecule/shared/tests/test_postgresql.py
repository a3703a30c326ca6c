"""PostgreSQL, where a scenario has it on its own host: the app logs in over
TLS, verifying the server's certificate and name, and nothing logs in
without it."""

import pytest
from conftest import APP, backend, database_url, hosts, manage, run_playbooks, variables

# Run by the app's Python on an app host: log in without TLS.
PLAIN_LOGIN = """
import sys, psycopg
host, port, name, user, password = sys.argv[1:6]
try:
    psycopg.connect(host=host, port=port, dbname=name, user=user, password=password, sslmode="disable").close()
    print("connected")
except psycopg.OperationalError as error:
    print(error)
"""


def remote_app_hosts():
    servers = hosts("postgresql")
    return [name for name in hosts("celery_workers") if servers and name not in servers]


@pytest.mark.parametrize("name", remote_app_hosts()[:1] or [None])
def test_the_app_logs_in_over_verified_tls_only(name):
    if name is None or not variables(hosts("postgresql")[0]).get("postgresql_tls"):
        pytest.skip("no PostgreSQL over TLS on another host in this scenario")
    host = backend(name)
    assert "sslmode=verify-full" in database_url(host)
    # The app's own connection is encrypted.
    used = manage(host, "shell", "--no-imports", "-c",
                  "from django.db import connection; c = connection.cursor(); "
                  "c.execute('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'); print(c.fetchone()[0])")
    assert used.strip().splitlines()[-1] == "True"
    # Without TLS, pg_hba.conf has no line for the app's network.
    server = hosts("postgresql")[0]
    settings = variables(server)
    refused = host.run(f"/opt/{APP}/venv/bin/python -c %s %s %s %s %s %s", PLAIN_LOGIN, server, "5432",
                       settings.get("postgresql_app_db", APP), settings.get("postgresql_app_user", APP),
                       settings["postgresql_app_password"]).stdout
    assert "no pg_hba.conf entry" in refused and "no encryption" in refused


def test_a_password_change_that_is_not_a_rotation_is_refused():
    """The preflight reads the verifiers PostgreSQL stores (pg_authid): a new
    password without postgresql_app_password_previous stops the run before any
    host changes, and the password is not printed."""
    servers = hosts("postgresql")
    if not servers:
        pytest.skip("no PostgreSQL host in this scenario")
    changed = "not-a-rotation-password-5e1d7c"
    result = run_playbooks("playbooks/preflight.yml", extra_vars={"postgresql_app_password": changed,
                                                                  "app_db_password": changed},
                           limit=servers[0], succeed=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "postgresql_app_password is not the password PostgreSQL has" in " ".join(output.split()), output[-3000:]
    assert changed not in output
