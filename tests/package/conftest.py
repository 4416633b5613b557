"""pytest set-up of the Debian package suite: the installed-system harness
(tests/installed/harness.py, in deb mode) on the import path, and the guard that keeps these
cases out of the real machine. Run through tests/package/run.sh only: it makes the throwaway
root first."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "installed"))


def pytest_configure(config):
    if os.environ.get("MFA_WORK") is None or os.environ.get("MFA_INSTALL") != "deb":
        raise pytest.UsageError("run tests/package/run.sh: these tests install packages and need its namespace")
