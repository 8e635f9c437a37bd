"""A service's own background work that dies is said at once and by readiness, never silently."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from carecoord_billing.exchange import ExchangeService
from carecoord_billing.fees import load as load_fees
from carecoord_billing.settings import BillingSettings
from carecoord_shared.errors import NotReady
from carecoord_shared.messaging.progress import degraded
from carecoord_shared.service import Runtime
from tests.services import built, settings_for


async def test_a_background_hook_that_raises_is_reported_failed_and_one_that_returns_is_not() -> None:
    runtime = Runtime(built("safety"), settings_for("safety"))

    async def startup_check(_runtime: Runtime) -> None:
        return None

    async def timers(_runtime: Runtime) -> None:
        raise NotADirectoryError("no such folder")

    async def forever(_runtime: Runtime) -> None:
        await asyncio.sleep(3600)

    runtime.start_background((startup_check, timers, forever))
    await asyncio.sleep(0.05)
    try:
        assert runtime.background_check() == {"failed": {"timers": "NotADirectoryError"}}
        assert degraded({"background": runtime.background_check()}) == [
            "background: timers stopped (NotADirectoryError); see the service's log"
        ]
    finally:
        await runtime.stop()
    assert runtime.background_check() == {"failed": {"timers": "NotADirectoryError"}}, "a cancelled hook is no failure"


async def test_an_exchange_that_cannot_start_says_why_on_every_manual_run(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings = BillingSettings(clearinghouse_dir=blocker / "clearinghouse")
    exchange = ExchangeService(settings, load_fees(), demographics=None)  # type: ignore[arg-type]
    with pytest.raises(NotReady, match="starts with the service"):
        await exchange.run_once()
    with pytest.raises(NotADirectoryError):
        await exchange.run(SimpleNamespace(uow=None))  # type: ignore[arg-type]
    with pytest.raises(NotReady, match=r"could not start \(NotADirectoryError\).*CARECOORD_CLEARINGHOUSE_DIR"):
        await exchange.run_once()
