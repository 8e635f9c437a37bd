"""Checks a FHIR answer against the specification: the ``fhir.resources`` models, then the required bindings.

``fhir.resources`` (pydantic v2; its R4B package, FHIR 4.3.0, is the release closest to the R4 4.0.1
we serve: the resources we serve did not change between them) checks the structure: every element
known, of its type and cardinality, no unknown keys, required elements present. It does not check
a ``required`` binding's code (``status: "bogus"`` passes), so :data:`REQUIRED_BINDINGS` lists those
of the elements we serve, copied from the R4 value sets, and :func:`validated` checks them too.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

# (resource type, element) -> the codes of its required value set (hl7.org/fhir/R4/valueset-*.html).
REQUIRED_BINDINGS: dict[tuple[str, str], frozenset[str]] = {
    ("Patient", "gender"): frozenset({"male", "female", "other", "unknown"}),
    ("Observation", "status"): frozenset(
        {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
    ),
    ("CarePlan", "status"): frozenset(
        {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
    ),
    ("CarePlan", "intent"): frozenset({"proposal", "plan", "order", "option"}),
    ("AdverseEvent", "actuality"): frozenset({"actual", "potential"}),
    ("Task", "status"): frozenset(
        {
            "draft",
            "requested",
            "received",
            "accepted",
            "rejected",
            "ready",
            "cancelled",
            "in-progress",
            "on-hold",
            "failed",
            "completed",
            "entered-in-error",
        }
    ),
    ("Task", "intent"): frozenset(
        {
            "unknown",
            "proposal",
            "plan",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        }
    ),
    ("Task", "priority"): frozenset({"routine", "urgent", "asap", "stat"}),
    ("Appointment", "status"): frozenset(
        {
            "proposed",
            "pending",
            "booked",
            "arrived",
            "fulfilled",
            "cancelled",
            "noshow",
            "entered-in-error",
            "checked-in",
            "waitlist",
        }
    ),
    ("Coverage", "status"): frozenset({"active", "cancelled", "draft", "entered-in-error"}),
    ("Claim", "status"): frozenset({"active", "cancelled", "draft", "entered-in-error"}),
    ("Claim", "use"): frozenset({"claim", "preauthorization", "predetermination"}),
    ("Bundle", "type"): frozenset(
        {
            "document",
            "message",
            "transaction",
            "transaction-response",
            "batch",
            "batch-response",
            "history",
            "searchset",
            "collection",
        }
    ),
}


def validated(resource: dict[str, Any]) -> Any:
    """The ``fhir.resources`` model of ``resource`` (a Bundle's entries each by their own type), or AssertionError."""
    resource_type = resource.get("resourceType")
    assert isinstance(resource_type, str), f"no resourceType in {sorted(resource)}"
    model = get_fhir_model_class(resource_type).model_validate(resource)
    for (bound_type, element), codes in REQUIRED_BINDINGS.items():
        if bound_type == resource_type and element in resource:
            assert resource[element] in codes, (
                f"{resource_type}.{element} = {resource[element]!r}: not in its value set"
            )
    for entry in resource.get("entry", []) if resource_type == "Bundle" else []:
        validated(entry["resource"])
    return model


def entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """A validated searchset Bundle's resources."""
    validated(bundle)
    assert bundle["type"] == "searchset", bundle["type"]
    return [entry["resource"] for entry in bundle["entry"]]
