"""Authentication (JWT bearer tokens), authorisation (roles, own patient, licensed state) and the audit log."""

from .access import (
    Access,
    Auditor,
    JurisdictionLookup,
    jurisdiction_lookup,
    learn_jurisdictions,
    patient_of,
    record_jurisdiction,
)
from .http import AccessChecks, AuthorisingApp, admitted_roles, allow
from .tables import audit_table, jurisdiction_table
from .tokens import DEVELOPMENT_JWT_SECRET, InvalidToken, Principal, Role, TokenVerifier, mint_token

__all__ = [
    "DEVELOPMENT_JWT_SECRET",
    "Access",
    "AccessChecks",
    "Auditor",
    "AuthorisingApp",
    "InvalidToken",
    "JurisdictionLookup",
    "Principal",
    "Role",
    "TokenVerifier",
    "admitted_roles",
    "allow",
    "audit_table",
    "jurisdiction_lookup",
    "jurisdiction_table",
    "learn_jurisdictions",
    "mint_token",
    "patient_of",
    "record_jurisdiction",
]
