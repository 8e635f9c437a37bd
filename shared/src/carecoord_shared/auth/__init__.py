"""Authentication (JWT bearer tokens), authorisation (roles, own patient, licensed state, care relations) and the audit log.

What a route declares (``allow(...)``, the FastAPI dependency giving it the caller's
``Access``) is the HTTP layer's: ``carecoord_shared.http``."""

from .access import (
    Access,
    Auditor,
    JurisdictionLookup,
    jurisdiction_lookup,
    learn_jurisdictions,
    patient_of,
    record_jurisdiction,
)
from .care import (
    ListScope,
    RelationLookup,
    care_relation_lookup,
    care_relations_table,
    learn_care_relations,
    related_patients,
    replace_care_team,
)
from .tables import audit_table, jurisdiction_table
from .tokens import DEVELOPMENT_JWT_SECRET, InvalidToken, Principal, Role, TokenVerifier, mint_token

__all__ = [
    "DEVELOPMENT_JWT_SECRET",
    "Access",
    "Auditor",
    "InvalidToken",
    "JurisdictionLookup",
    "ListScope",
    "Principal",
    "RelationLookup",
    "Role",
    "TokenVerifier",
    "audit_table",
    "care_relation_lookup",
    "care_relations_table",
    "jurisdiction_lookup",
    "jurisdiction_table",
    "learn_care_relations",
    "learn_jurisdictions",
    "mint_token",
    "patient_of",
    "record_jurisdiction",
    "related_patients",
    "replace_care_team",
]
