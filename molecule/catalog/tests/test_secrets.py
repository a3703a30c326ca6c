"""The shared secrets tests (molecule/shared/tests/test_secrets.py) on this
project's host: no secret in a process's command line, the journal or a file
an unrelated user can read, nor in site.yml's output at -vv (the --check
--diff preview on the new host, and the same on the converged host, which
must also report no change)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "shared_test_secrets", Path(__file__).resolve().parents[2] / "shared" / "tests" / "test_secrets.py")
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
globals().update({name: value for name, value in vars(_shared).items() if name.startswith("test_")})
