"""Claims, remittances and eligibility through the drop-folder clearinghouse, in-process:
837P files pass a third-party validator, the simulated payer's 835s and 271s post
correctly, and a malformed inbound file is set aside without stopping the next."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from carecoord_billing import fees
from carecoord_billing.claims import ClaimSubmitter
from carecoord_billing.clearinghouse import DropFolders
from carecoord_billing.demographics import IntakeDemographics
from carecoord_billing.exchange import Exchange
from carecoord_billing.settings import PayerOutcome, ProviderIdentity
from carecoord_billing.simulated_payer import SimulatedPayer
from carecoord_billing.x12 import claim_837p, remittance_835
from carecoord_billing.x12.parties import Payer, Subscriber
from carecoord_billing.x12.remittance_835 import Adjustment, ClaimPayment, PaidClaim
from carecoord_billing.x12.syntax import Party, parse
from carecoord_contracts.common import AppointmentType, CoverageKind, Indication
from carecoord_contracts.dosing import TreatmentPlanCreated
from carecoord_contracts.intake import CoverageDeclared
from tests.auth import SERVICE_TOKEN
from tests.fake_intake import FakeIntake, running_fake_intake
from tests.integration.billing_harness import Billing, completed, outbox_types, planned
from tests.x12_validators import linuxforhealth_parse, pyx12_errors


@pytest.fixture
def intake() -> Iterator[FakeIntake]:
    with running_fake_intake() as fake:
        yield fake


def exchange(billing: Billing, root: Path, intake: FakeIntake, payer: SimulatedPayer | None = None) -> Exchange:
    demographics = IntakeDemographics(intake.url, SecretStr(SERVICE_TOKEN))
    return Exchange(billing.uow, DropFolders(root), demographics, fees.load(), ProviderIdentity(), payer=payer)


async def insured_patient(
    billing: Billing, intake: FakeIntake, member_id: str, state: str = "TX", *, plan: bool = True
) -> uuid.UUID:
    """An insured patient; with ``plan``, one whose treatment plan (and so diagnosis) billing already knows."""
    patient = uuid.uuid4()
    intake.add(patient, member_id)
    declared = CoverageDeclared(
        coverage_id=uuid.uuid4(), kind=CoverageKind.insurance, payer_id="ACME1", state_of_residence=state
    )
    await billing.publish(declared, patient, "intake")
    if plan:
        await planned(billing, patient)
    return patient


def claim_numbers_in(folder: Path) -> list[str]:
    numbers = []
    for path in sorted(folder.glob("837P-*")):
        for transaction in parse(path.read_text()):
            numbers.extend(s[1] for s in transaction.segments if s.id == "CLM")
    return numbers


async def test_one_claim_per_appointment_in_an_837p_that_pyx12_accepts(
    billing: Billing, intake: FakeIntake, tmp_path: Path
) -> None:
    patient = await insured_patient(billing, intake, "MEM0001")
    other = await insured_patient(billing, intake, "MEM0002")
    appointment = uuid.uuid4()
    first = await billing.publish(completed(appointment), patient, "scheduling")
    await billing.deliver(first)
    await billing.publish(completed(uuid.uuid4(), AppointmentType.initial_evaluation, video=False), other, "scheduling")
    ex = exchange(billing, tmp_path, intake)  # no payer: the files stay in outbound/ to be read

    sent = (await ex.run_once()).interchanges_sent
    for _ in range(3):  # the completion again under new event ids, then more cycles
        await billing.publish(completed(appointment), patient, "scheduling")
        assert [n for n in (await ex.run_once()).interchanges_sent] == [], "nothing new to send"

    outbound = tmp_path / "outbound"
    [claim_file] = sorted(outbound.glob("837P-*"))
    assert pyx12_errors(claim_file) == []
    [claim] = await billing.fetch("SELECT * FROM claims WHERE patient_id = $1", patient)
    assert claim_numbers_in(outbound).count(claim["claim_number"]) == 1
    assert claim["status"] == "submitted" and claim["total_cents"] == 32000
    assert len(sent) == 2, "one 837P and one 270"
    text = claim_file.read_text()
    assert "SV1*HC:99214:95*220*UN*1***1~" in text and "SV1*HC:90833:95*100*UN*1***1~" in text
    assert "SV1*HC:90792*450*UN*1***1~" in text, "in person: no modifier 95"
    assert "CLM*" + claim["claim_number"] + "*320***10:B:1*Y*A*Y*Y~" in text
    assert (await outbox_types(billing, patient)).count("ClaimSubmitted") == 1
    assert "O'DOE-SMITH" not in "".join(map(str, await billing.fetch("SELECT envelope FROM outbox"))), (
        "no PHI on events"
    )

    # The 270 that went out with it: a third-party 5010 270 parser reads our trace numbers back.
    [inquiry_file] = sorted(outbound.glob("270-*"))
    parsed = linuxforhealth_parse(inquiry_file)
    assert parsed["ok"], parsed
    traces = await billing.fetch(
        "SELECT trace_number FROM eligibility_checks WHERE patient_id = ANY($1)", [patient, other]
    )
    assert sorted(s["traces"][0] for s in parsed["subscribers"]) == sorted(r["trace_number"] for r in traces)
    assert {s["model"] for s in parsed["subscribers"]} == {"EligibilityInquiry"}


async def test_the_simulated_payers_answers_post_as_paid_partial_denied_reversed(
    billing: Billing, intake: FakeIntake, tmp_path: Path
) -> None:
    members = {
        "MPAID": PayerOutcome.paid,
        "MPART": PayerOutcome.partially_paid,
        "MDENY": PayerOutcome.denied,
        "MREV": PayerOutcome.reversed,
    }
    patients = {member: await insured_patient(billing, intake, member) for member in [*members, "MGONE"]}
    for patient in patients.values():
        await billing.publish(completed(uuid.uuid4()), patient, "scheduling")  # 320.00 each
    payer = SimulatedPayer(tmp_path, outcomes=members, inactive_members=frozenset({"MGONE"}))

    report = await exchange(billing, tmp_path, intake, payer).run_once()

    assert report.files_rejected == [] and len(report.files_posted) == 2, report
    claims = {}
    for member, patient in patients.items():
        [claims[member]] = await billing.fetch("SELECT * FROM claims WHERE patient_id = $1", patient)
    assert (claims["MPAID"]["status"], claims["MPAID"]["paid_cents"]) == ("paid", 32000)
    # Allowed 80% (CO-45 64.00), paid 80% of allowed, coinsurance (PR-2) the rest.
    assert (
        claims["MPART"]["status"],
        claims["MPART"]["paid_cents"],
        claims["MPART"]["patient_responsibility_cents"],
    ) == ("partially_paid", 20480, 5120)
    assert (claims["MDENY"]["status"], claims["MDENY"]["paid_cents"]) == ("denied", 0)
    assert (claims["MREV"]["status"], claims["MREV"]["paid_cents"]) == ("reversed", 0)
    [partial] = await billing.fetch(
        "SELECT adjustments FROM remittances WHERE claim_id = $1", claims["MPART"]["claim_id"]
    )
    assert partial["adjustments"] == [
        {"group": "CO", "reason_code": "45", "cents": 6400},
        {"group": "PR", "reason_code": "2", "cents": 5120},
    ]
    [denial] = await billing.fetch("SELECT * FROM denials WHERE claim_id = $1", claims["MDENY"]["claim_id"])
    assert (denial["group_code"], denial["reason_code"], denial["status"]) == ("CO", "50", "open")

    assert sorted(await outbox_types(billing, patients["MPAID"])) == [
        "ChargeCreated",
        "ClaimSubmitted",
        "CoverageVerified",
        "RemittancePosted",
    ]
    assert (await outbox_types(billing, patients["MREV"])).count("RemittancePosted") == 2
    assert "ClaimDenied" in await outbox_types(billing, patients["MDENY"])

    # CLP01 echoes CLM01; the payer's files are valid 835s to pyx12 too.
    archive = tmp_path / "archive"
    [remit] = sorted(archive.glob("835-*"))
    assert pyx12_errors(remit) == []
    echoed = {p.claim_number for p in remittance_835.read(remit.read_text())}
    assert echoed == {c["claim_number"] for c in claims.values()}

    # The 271s: every inquiry answered by trace number; the lapsed member is inactive.
    verified = {
        member: (await billing.fetch("SELECT verification_status FROM coverages WHERE patient_id = $1", p))[0][0]
        for member, p in patients.items()
    }
    assert verified == {**{m: "active" for m in members}, "MGONE": "inactive"}
    [answer_file] = sorted(archive.glob("271-*"))
    parsed = linuxforhealth_parse(answer_file)
    assert parsed["ok"], parsed
    assert sorted(b for s in parsed["subscribers"] for b in s["benefits"]) == ["1"] * len(members) + ["6"]


async def test_a_malformed_inbound_file_is_rejected_with_a_reason_and_the_next_file_posts(
    billing: Billing, intake: FakeIntake, tmp_path: Path
) -> None:
    patient = await insured_patient(billing, intake, "MEM0100")
    await billing.publish(completed(uuid.uuid4()), patient, "scheduling")
    ex = exchange(billing, tmp_path, intake)
    await ex.run_once()
    [claim] = await billing.fetch("SELECT * FROM claims WHERE patient_id = $1", patient)

    inbound = tmp_path / "inbound"
    (inbound / "a-garbage.x12").write_text("this is not X12 at all")
    unbalanced = ClaimPayment(claim["claim_number"], "1", 32000, 30000, 0, "P1", ())  # 20.00 unexplained
    denied = ClaimPayment(claim["claim_number"], "4", 32000, 0, 0, "P2", (Adjustment("CO", "197", 32000),))
    (inbound / "b-unbalanced.x12").write_text(_835([unbalanced]))
    (inbound / "c-good.x12").write_text(_835([denied]))
    for n, name in enumerate(["a-garbage.x12", "b-unbalanced.x12", "c-good.x12"]):
        os.utime(inbound / name, ns=(1_000_000_000 * (n + 1),) * 2)

    report = await ex.receive()

    assert report.files_rejected == ["a-garbage.x12", "b-unbalanced.x12"]
    assert report.files_posted == ["c-good.x12"]
    rejected = tmp_path / "rejected"
    assert (
        rejected / "a-garbage.x12.reason.txt"
    ).read_text() == "not an X12 interchange: no ISA segment at the start\n"
    assert "does not equal its adjustments" in (rejected / "b-unbalanced.x12.reason.txt").read_text()
    assert (tmp_path / "archive" / "c-good.x12").exists() and list(inbound.iterdir()) == []
    [denial] = await billing.fetch("SELECT reason_code FROM denials WHERE claim_id = $1", claim["claim_id"])
    assert denial["reason_code"] == "197"

    # The same file dropped again is archived without posting twice.
    (inbound / "c-good-again.x12").write_text((tmp_path / "archive" / "c-good.x12").read_text())
    assert (await ex.receive()).files_posted == ["c-good-again.x12"]
    assert len(await billing.fetch("SELECT * FROM remittances WHERE claim_id = $1", claim["claim_id"])) == 1


def _835(payments: list[ClaimPayment]) -> str:
    patient = Subscriber("Jane", "Doe", __import__("datetime").date(1980, 1, 2), "F", "", "", "", "", "MEM0100")
    return remittance_835.build(
        [PaidClaim(p, patient, "10") for p in payments],
        payer=Payer("ACME1"),
        payee_name="CARECOORD PSYCHIATRY PC",
        payee_npi="1234567893",
        sender=Party("SIMPAYER"),
        receiver="CARECOORD",
        control_number=77,
        at=__import__("datetime").datetime.now(__import__("datetime").UTC),
    )


class FailingOnce(DropFolders):
    """The outbound write fails once, as a crash or a full disk between reserving claims and sending them."""

    failed = False

    def send(self, name: str, content: str) -> Path:
        if not self.failed:
            self.failed = True
            raise OSError("disk full")
        return super().send(name, content)


async def test_claims_reserved_but_not_written_are_sent_on_the_next_run_under_the_same_control_number(
    billing: Billing, intake: FakeIntake, tmp_path: Path
) -> None:
    patient = await insured_patient(billing, intake, "MEM0200")
    await billing.publish(completed(uuid.uuid4()), patient, "scheduling")
    folders = FailingOnce(tmp_path)
    submitter = ClaimSubmitter(
        billing.uow, IntakeDemographics(intake.url, SecretStr(SERVICE_TOKEN)), folders, fees.load(), ProviderIdentity()
    )

    with pytest.raises(OSError):
        await submitter.run()
    [claim] = await billing.fetch("SELECT * FROM claims WHERE patient_id = $1", patient)
    assert claim["status"] == "building" and "ClaimSubmitted" not in await outbox_types(billing, patient)

    assert await submitter.run() == [claim["interchange_control_number"]]
    [sent] = await billing.fetch("SELECT * FROM claims WHERE patient_id = $1", patient)
    assert sent["status"] == "submitted" and sent["claim_id"] == claim["claim_id"]
    assert claim_numbers_in(tmp_path / "outbound") == [claim["claim_number"]]
    assert (await outbox_types(billing, patient)).count("ClaimSubmitted") == 1


# --- the diagnosis on a claim (issue 20, item 6) -------------------------------------------


async def test_a_claim_carries_the_diagnosis_codes_of_the_patients_plan_in_an_837p_that_pyx12_accepts(
    billing: Billing, intake: FakeIntake, tmp_path: Path
) -> None:
    patient = await insured_patient(billing, intake, "MEM0300", plan=False)
    await planned(billing, patient, ["F43.10", "F33.1"], Indication.ptsd)
    await billing.publish(completed(uuid.uuid4()), patient, "scheduling")

    await exchange(billing, tmp_path, intake).run_once()

    [claim] = await billing.fetch("SELECT * FROM claims WHERE patient_id = $1", patient)
    assert claim["diagnosis_codes"] == ["F4310", "F331"]
    [claim_file] = [p for p in sorted((tmp_path / "outbound").glob("837P-*")) if claim["claim_number"] in p.read_text()]
    assert pyx12_errors(claim_file) == []
    [received] = [c for c in claim_837p.read(claim_file.read_text()) if c.claim_number == claim["claim_number"]]
    assert received.diagnoses == ("F4310", "F331"), "principal (ABK) first, then the others (ABF), without the dot"
    assert "HI*ABK:F4310*ABF:F331~" in claim_file.read_text()


async def test_a_claim_without_a_known_diagnosis_waits_for_the_plan_and_then_carries_its_codes(
    billing: Billing, intake: FakeIntake, tmp_path: Path
) -> None:
    """An initial evaluation is billed before any plan exists: its charge is not claimed under a made-up code."""
    patient = await insured_patient(billing, intake, "MEM0301", plan=False)
    await billing.publish(completed(uuid.uuid4(), AppointmentType.initial_evaluation), patient, "scheduling")
    ex = exchange(billing, tmp_path, intake)

    await ex.run_once()
    await ex.run_once()
    assert await billing.fetch("SELECT * FROM claims WHERE patient_id = $1", patient) == [], (
        "no claim without a diagnosis"
    )
    [charge] = await billing.fetch("SELECT status FROM charges WHERE patient_id = $1", patient)
    assert charge["status"] == "open", "the charge waits, it is not lost"

    await planned(billing, patient, ["F41.1"], Indication.anxiety)  # the plan the evaluation led to
    await ex.run_once()
    [claim] = await billing.fetch("SELECT * FROM claims WHERE patient_id = $1", patient)
    assert claim["diagnosis_codes"] == ["F411"] and claim["status"] == "submitted"
    texts = [p.read_text() for p in sorted((tmp_path / "outbound").glob("837P-*"))]
    [text] = [t for t in texts if claim["claim_number"] in t]
    assert "HI*ABK:F411~" in text and "F331" not in text


async def test_a_plan_event_from_before_diagnoses_were_recorded_tells_billing_nothing(
    billing: Billing, intake: FakeIntake, tmp_path: Path
) -> None:
    patient = await insured_patient(billing, intake, "MEM0302", plan=False)
    legacy = TreatmentPlanCreated(
        plan_id=uuid.uuid4(), starting_dose_mg=100, max_dose_mg=300, max_step_mg=50, planned_sessions=6
    )
    await billing.publish(legacy, patient, "dosing")
    await billing.publish(completed(uuid.uuid4()), patient, "scheduling")
    await exchange(billing, tmp_path, intake).run_once()
    assert await billing.fetch("SELECT * FROM claims WHERE patient_id = $1", patient) == []
