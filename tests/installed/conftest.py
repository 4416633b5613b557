"""pytest set-up of the installed-system suite: one installed, running mfa for the session.

The `system` fixture brings up what harness.System describes (init, SMTP server, users,
rules, pam.d lines, mfa-sender as user mfa, sshd) once, and stops every process it started
at the end. When the set-up itself fails, every case reports that failure (ERROR).
The `duo` fixture (a module's) adds the Duo mock and [duo] to that system (harness.DuoMock,
System.duo_configure) and takes both away again after the module, the sender left running.
Run through tests/installed/run.sh only: it makes the throwaway root first.
"""

import os

import pytest

import harness

UMASKS = ["022", "077"]


def pytest_configure(config):
    if os.environ.get("MFA_WORK") is None:
        raise pytest.UsageError("run tests/installed/run.sh: these tests change /etc and need its namespace")


@pytest.fixture(scope="session")
def system():
    s = harness.System()
    try:
        s.up()
        yield s
    finally:
        s.down()


@pytest.fixture(params=UMASKS, ids=lambda u: f"umask {u}")
def umask(request):
    return request.param


@pytest.fixture(scope="module")
def duo(system):
    mock = None
    try:
        mock = harness.DuoMock(harness.DUO_USERS)
        system.duo_configure(mock)
        yield mock
    finally:
        try:
            system.duo_unconfigure()
        finally:
            if mock is not None:
                mock.stop()
