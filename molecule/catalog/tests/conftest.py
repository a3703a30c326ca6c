"""This scenario's tests use the shared helpers (molecule/shared/tests/conftest.py:
http, hosts, backend, variables, the journal on failure) without the shared
suite, which tests the sample app."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "shared_conftest", Path(__file__).resolve().parents[2] / "shared" / "tests" / "conftest.py")
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
globals().update({name: value for name, value in vars(_shared).items() if not name.startswith("__")})
