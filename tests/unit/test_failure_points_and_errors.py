from __future__ import annotations

import subprocess
import sys

from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from carecoord_shared.messaging.errors import is_transient


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_transient_errors_are_connection_losses_and_conflicts() -> None:
    assert is_transient(ConnectionRefusedError())
    assert is_transient(TimeoutError())
    assert is_transient(OperationalError("SELECT 1", {}, _Orig("08006")))
    assert is_transient(IntegrityError("INSERT", {}, _Orig("23505")))  # concurrent duplicate
    assert not is_transient(IntegrityError("INSERT", {}, _Orig("23502")))  # not-null: a bug, not a blip
    assert not is_transient(ProgrammingError("SELECT", {}, _Orig("42P01")))
    assert not is_transient(ValueError("bad"))


def test_an_armed_failure_point_kills_the_process_with_sigkill() -> None:
    code = (
        "from carecoord_shared.faults import FailurePoints\n"
        "p = FailurePoints('consumer.before_commit@TreatmentHoldRequested')\n"
        "p.reach('consumer.before_commit', 'SideEffectReported')\n"
        "print('survived other event types', flush=True)\n"
        "p.reach('consumer.before_commit', 'TreatmentHoldRequested')\n"
        "print('unreachable')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode == -9
    assert result.stdout == "survived other event types\n"
