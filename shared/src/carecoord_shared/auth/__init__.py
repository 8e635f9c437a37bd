"""Authentication (JWT bearer tokens), authorisation (roles, own patient, licensed state) and the audit log.

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
from .tables import audit_table, jurisdiction_table
from .tokens import DEVELOPMENT_JWT_SECRET, InvalidToken, Principal, Role, TokenVerifier, mint_token

__all__ = [
    "DEVELOPMENT_JWT_SECRET",
    "Access",
    "Auditor",
    "InvalidToken",
    "JurisdictionLookup",
    "Principal",
    "Role",
    "TokenVerifier",
    "audit_table",
    "jurisdiction_lookup",
    "jurisdiction_table",
    "learn_jurisdictions",
    "mint_token",
    "patient_of",
    "record_jurisdiction",
]
