"""Billing's FHIR R4 resources: the patient's Coverage and each Claim billing made (served under /fhir/R4/).

The mapping is pure (rows in, FHIR JSON dicts out); :func:`resources` reads through queries.py,
with the roles and audit rows of billing's own reads of the same data (routes.py):
``read coverage`` and ``read claims``.

Coverage (https://hl7.org/fhir/R4/coverage.html), from the ``coverages`` row (the patient's latest
declaration; id: its coverage id, so a superseded declaration's id is 404):
- status: ``cancelled`` when the payer's 271 said the coverage is inactive, else ``active``.
- type: insurance -> ``HIP`` (health insurance plan policy) of
  http://terminology.hl7.org/CodeSystem/v3-ActCode; self-pay -> ``pay`` of
  http://terminology.hl7.org/CodeSystem/coverage-selfpay (both in the R4 coverage-type value set,
  https://hl7.org/fhir/R4/valueset-coverage-type.html).
- payor: insurance -> the payer as a display-only Organization reference (billing knows the payer's
  id, not a resource); self-pay -> the Patient. beneficiary: the Patient.
- Left out: subscriberId / member id (billing never stores it, and its coverage read does not
  return it: it is fetched from intake only into a payer file); period (billing knows when the
  coverage was declared, not when the policy runs); the verification state; whether the practice
  bills this payer in the patient's state (``billable_to_payer``: FHIR Coverage has no such element).

Claim (https://hl7.org/fhir/R4/claim.html), one per row of ``claims`` (an 837P claim) with its charge:
- status: ``draft`` while the claim is reserved but its 837P not yet written (``building``), else
  ``active``. Billing never voids a claim (only unclaimed charges are voided), so ``cancelled``
  does not occur.
- use ``claim``; type ``professional`` of http://terminology.hl7.org/CodeSystem/claim-type;
  priority ``normal`` of http://terminology.hl7.org/CodeSystem/processpriority.
- provider: the practice as on every 837P (display-only Organization reference, its NPI as
  identifier, http://hl7.org/fhir/sid/us-npi); insurer: the payer, display-only.
- insurance: one, focal, the patient's Coverage when it is still the insurance the claim went to
  (same payer); a display-only reference when the patient has since declared other coverage.
- diagnosis: the ICD-10-CM codes fixed on the claim (http://hl7.org/fhir/sid/icd-10-cm), principal
  first, written with their dot (F43.10: billing stores them as X12 carries them, without).
- item: one per charge line: CPT (http://www.ama-assn.org/go/cpt) or, for a HCPCS Level II code
  (a letter and four digits), HCPCS (https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets);
  the charge's modifiers; servicedDate; place of service (CMS POS code set); unitPrice and net in USD.
- total: the claim's total in USD.
- Left out: the adjudication (paid, partially paid, denied, reversed; paid and patient-responsibility
  amounts): that is ClaimResponse / ExplanationOfBenefit territory, not served here.
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Any

from carecoord_contracts.common import CoverageKind
from carecoord_shared.auth import Principal, Role
from carecoord_shared.http.fhir import FhirResource, concept, instant, reference, uuid_id
from carecoord_shared.messaging.unit_of_work import UnitOfWork

from . import queries
from .settings import ProviderIdentity

# https://terminology.hl7.org/CodeSystem-v3-ActCode.html#v3-ActCode-HIP
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
# https://terminology.hl7.org/CodeSystem-coverage-selfpay.html
SELF_PAY = "http://terminology.hl7.org/CodeSystem/coverage-selfpay"
# https://terminology.hl7.org/CodeSystem-claim-type.html
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
# https://terminology.hl7.org/CodeSystem-processpriority.html
PRIORITY = "http://terminology.hl7.org/CodeSystem/processpriority"
# https://terminology.hl7.org/CodeSystem-ex-diagnosistype.html
DIAGNOSIS_TYPE = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype"
# https://terminology.hl7.org/CodeSystem-icd10CM.html
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
# https://terminology.hl7.org/CodeSystem-CPT.html
CPT = "http://www.ama-assn.org/go/cpt"
# https://terminology.hl7.org/CodeSystem-HCPCS-all-codes.html (the HCPCS Level II release code sets)
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
# As CARIN Blue Button uses it for Claim/EOB item.location:
# https://hl7.org/fhir/us/carin-bb/CodeSystem-CMSPlaceOfServiceCodes.html
PLACE_OF_SERVICE = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
# https://terminology.hl7.org/NamingSystem-npi.html
NPI = "http://hl7.org/fhir/sid/us-npi"

_HCPCS_LEVEL_II = re.compile(r"^[A-V][0-9]{4}$")
# As billing's existing reads of coverage and claims admit (routes.PatientCare).
PATIENT_CARE = frozenset({Role.PATIENT, Role.CLINICIAN, Role.SERVICE})


def money(cents: int) -> dict[str, Any]:
    """FHIR Money from integer cents (USD: billing bills in dollars only)."""
    return {"value": round(cents / 100, 2), "currency": "USD"}


def icd10cm(code: str) -> str:
    """ICD-10-CM as published (dot after the category): billing keeps the X12 form without it."""
    bare = code.replace(".", "")
    return f"{bare[:3]}.{bare[3:]}" if len(bare) > 3 else bare


def procedure_system(code: str) -> str:
    """HCPCS Level II codes are a letter and four digits; the five-digit (or 4 digits + F/T/U) ones are CPT."""
    return HCPCS if _HCPCS_LEVEL_II.match(code) else CPT


def modifier_system(modifier: str) -> str:
    """CPT modifiers are two digits (95: synchronous telehealth); HCPCS Level II ones have a letter (GT)."""
    return CPT if modifier.isdigit() else HCPCS


def _payer(payer_id: str | None) -> dict[str, Any]:
    """A payer as billing knows it: its clearinghouse payer id, no resource of its own."""
    if payer_id is None:
        return {"type": "Organization", "display": "payer not declared"}
    return {"type": "Organization", "identifier": {"value": payer_id}, "display": f"payer {payer_id}"}


# -- Coverage ----------------------------------------------------------------------------------


def coverage_status(verification_status: str) -> str:
    """A payer's 271 saying the coverage is inactive cancels it; unverified and unknown stay active."""
    return "cancelled" if verification_status == "inactive" else "active"


def coverage(row: dict[str, Any]) -> dict[str, Any]:
    patient = reference("Patient", row["patient_id"])
    if row["kind"] == CoverageKind.self_pay.value:
        kind = concept(SELF_PAY, "pay", "Pay", text="self-pay")
        payor = [patient]
    else:
        kind = concept(ACT_CODE, "HIP", "health insurance plan policy", text="insurance")
        payor = [_payer(row["payer_id"])]
    return {
        "resourceType": "Coverage",
        "id": str(row["coverage_id"]),
        "status": coverage_status(row["verification_status"]),
        "type": kind,
        "beneficiary": patient,
        "payor": payor,
    }


# -- Claim -------------------------------------------------------------------------------------


def claim_status(status: str) -> str:
    """Reserved but not yet in an 837P is a draft; sent (whatever the payer answered since) is active."""
    return "draft" if status == "building" else "active"


def claim_insurance(row: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The patient's Coverage when it is still the insurance the claim went to, else a display-only one."""
    if (
        current is not None
        and current["kind"] == CoverageKind.insurance.value
        and current["payer_id"] == row["payer_id"]
    ):
        covered_by = reference("Coverage", current["coverage_id"])
    else:
        covered_by = {"display": f"coverage with payer {row['payer_id']} (since superseded)"}
    return {"sequence": 1, "focal": True, "coverage": covered_by}


def claim(row: dict[str, Any], current_coverage: dict[str, Any] | None, provider: ProviderIdentity) -> dict[str, Any]:
    """A claims row joined with its charge (lines, modifiers, place_of_service, service_date)."""
    served: date = row["service_date"]
    diagnoses = list(row["diagnosis_codes"] or [])
    modifiers = [concept(modifier_system(m), m) for m in row["modifiers"]]
    items = []
    for sequence, line in enumerate(row["lines"], start=1):
        item: dict[str, Any] = {
            "sequence": sequence,
            "productOrService": concept(procedure_system(line["cpt"]), line["cpt"]),
            "servicedDate": served.isoformat(),
            "locationCodeableConcept": concept(PLACE_OF_SERVICE, row["place_of_service"]),
            "quantity": {"value": 1},
            "unitPrice": money(line["cents"]),
            "net": money(line["cents"]),
        }
        if diagnoses:
            item["diagnosisSequence"] = list(range(1, len(diagnoses) + 1))
        if modifiers:
            item["modifier"] = modifiers
        items.append(item)
    out: dict[str, Any] = {
        "resourceType": "Claim",
        "id": str(row["claim_id"]),
        "identifier": [{"value": row["claim_number"]}],
        "status": claim_status(row["status"]),
        "type": concept(CLAIM_TYPE, "professional", "Professional"),
        "use": "claim",
        "patient": reference("Patient", row["patient_id"]),
        "billablePeriod": {"start": served.isoformat(), "end": served.isoformat()},
        "created": instant(row["created_at"]),
        "insurer": _payer(row["payer_id"]),
        "provider": {
            "type": "Organization",
            "identifier": {"system": NPI, "value": provider.npi},
            "display": provider.name,
        },
        "priority": concept(PRIORITY, "normal", "Normal"),
        "insurance": [claim_insurance(row, current_coverage)],
        "item": items,
        "total": money(row["total_cents"]),
    }
    if diagnoses:
        out["diagnosis"] = [
            {
                "sequence": sequence,
                "diagnosisCodeableConcept": concept(ICD10CM, icd10cm(code)),
                **({"type": [concept(DIAGNOSIS_TYPE, "principal", "Principal Diagnosis")]} if sequence == 1 else {}),
            }
            for sequence, code in enumerate(diagnoses, start=1)
        ]
    return out


# -- the resources served ----------------------------------------------------------------------


def resources(provider: ProviderIdentity) -> list[FhirResource]:
    async def coverage_owner(uow: UnitOfWork, resource_id: str) -> uuid.UUID:
        return await queries.coverage_owner(uow, uuid_id(resource_id, "coverage"))

    async def read_coverage(uow: UnitOfWork, resource_id: str, _principal: Principal) -> dict[str, Any]:
        return coverage(await queries.coverage_by_id(uow, uuid_id(resource_id, "coverage")))

    async def search_coverage(uow: UnitOfWork, patient_id: uuid.UUID, _principal: Principal) -> list[dict[str, Any]]:
        return [coverage(row) for row in await queries.patient_coverages(uow, patient_id)]

    async def claim_owner(uow: UnitOfWork, resource_id: str) -> uuid.UUID:
        return await queries.claim_owner(uow, uuid_id(resource_id, "claim"))

    async def current_coverage(uow: UnitOfWork, patient_id: uuid.UUID) -> dict[str, Any] | None:
        rows = await queries.patient_coverages(uow, patient_id)
        return rows[0] if rows else None

    async def read_claim(uow: UnitOfWork, resource_id: str, _principal: Principal) -> dict[str, Any]:
        row = await queries.claim_detail(uow, uuid_id(resource_id, "claim"))
        return claim(row, await current_coverage(uow, row["patient_id"]), provider)

    async def search_claims(uow: UnitOfWork, patient_id: uuid.UUID, _principal: Principal) -> list[dict[str, Any]]:
        rows = await queries.patient_claim_details(uow, patient_id)
        current = await current_coverage(uow, patient_id) if rows else None
        return [claim(row, current, provider) for row in rows]

    return [
        FhirResource("Coverage", "coverage", coverage_owner, read_coverage, search_coverage, roles=PATIENT_CARE),
        FhirResource("Claim", "claims", claim_owner, read_claim, search_claims, roles=PATIENT_CARE),
    ]
