from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from pydantic import ValidationError

from carecoord_intake import key_rotation
from carecoord_intake.phi import PhiCipher
from carecoord_intake.schemas import CoverageIn, Registration
from carecoord_intake.settings import DEVELOPMENT_PHI_KEY, IntakeSettings


def test_phi_is_encrypted_and_round_trips() -> None:
    cipher = PhiCipher([Fernet.generate_key().decode()])
    token = cipher.encrypt("Ada Lovelace")
    assert "Ada" not in token and cipher.decrypt(token) == "Ada Lovelace"
    assert cipher.encrypt("Ada Lovelace") != token, "the same value never encrypts to the same text"


def test_keys_rotate_old_tokens_stay_readable_then_move_to_the_new_key() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = PhiCipher([old]).encrypt("1980-02-29")
    during = PhiCipher([new, old])
    assert during.decrypt(token) == "1980-02-29"
    rotated = during.rotate(token)
    assert PhiCipher([new]).decrypt(rotated) == "1980-02-29"
    with pytest.raises(InvalidToken):
        PhiCipher([new]).decrypt(token)


def test_settings_read_comma_separated_keys_and_states(monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("CARECOORD_PHI_KEYS", f"{key}, {DEVELOPMENT_PHI_KEY}")
    monkeypatch.setenv("CARECOORD_SERVED_STATES", "CO,NY")
    settings = IntakeSettings()
    assert [k.get_secret_value() for k in settings.phi_keys] == [key, DEVELOPMENT_PHI_KEY]
    assert settings.served_states == {"CO", "NY"}
    assert key not in repr(settings)
    assert settings.uses_development_secrets
    monkeypatch.setenv("CARECOORD_PHI_KEYS", key)
    assert not IntakeSettings().uses_development_secrets


def test_settings_refuse_unknown_states(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARECOORD_SERVED_STATES", "CO,XX")
    with pytest.raises(ValidationError, match="not US state codes"):
        IntakeSettings()


def test_insurance_needs_payer_member_id_and_plan_and_self_pay_has_none() -> None:
    CoverageIn(kind="insurance", payer_id="AETNA1", member_id="M-1", plan="Gold")
    CoverageIn(kind="self_pay")
    with pytest.raises(ValidationError) as missing:
        CoverageIn(kind="insurance", payer_id="AETNA1")
    assert [e["loc"] for e in missing.value.errors()] == [("member_id",), ("plan",)]
    with pytest.raises(ValidationError) as extra:
        CoverageIn(kind="self_pay", member_id="M-1")
    assert [e["loc"] for e in extra.value.errors()] == [("member_id",)]


def test_validation_errors_do_not_echo_the_submitted_phi() -> None:
    with pytest.raises(ValidationError) as invalid:
        Registration(
            external_id="app-1",
            first_name="Zed\x00",
            last_name="Quux",
            date_of_birth="2999-01-01",
            sex="F",
            email="zed@example.org",
            phone="+1 303 555 0100",
            address={"line1": "1 Main St", "city": "Denver", "state": "CO", "postal_code": "80202"},
            state_of_residence="CO",
            time_zone="America/Denver",
        )
    errors = invalid.value.errors()
    assert {e["loc"] for e in errors} == {("first_name",), ("date_of_birth",)}
    assert not any("Zed" in e["msg"] or "2999" in e["msg"] for e in errors)


def test_every_phi_column_is_found_by_the_naming_convention() -> None:
    found = {t.name: cols for t, cols in key_rotation.encrypted_columns().items()}
    assert found == {
        "patients": [
            "first_name_enc",
            "last_name_enc",
            "date_of_birth_enc",
            "sex_enc",
            "email_enc",
            "phone_enc",
            "address_enc",
        ],
        "medical_screenings": ["notes_enc"],
        "coverages": ["member_id_enc"],
        "eligibility_decisions": ["override_reason_enc"],
    }


def test_the_openapi_document_covers_the_intake_api_and_its_bearer_scheme() -> None:
    from carecoord_shared.service import create_app
    from tests.services import built, settings_for

    spec = create_app(built("intake"), settings_for("intake")).openapi()
    assert {
        "/v1/patients",
        "/v1/patients/{patient_id}/assessments",
        "/v1/patients/{patient_id}/medical-screening",
        "/v1/patients/{patient_id}/blood-pressure",
        "/v1/patients/{patient_id}/coverage",
        "/v1/patients/{patient_id}/intake",
        "/v1/patients/{patient_id}/eligibility/override",
        "/v1/internal/patients/{patient_id}/claim-demographics",
    } <= set(spec["paths"])
    internal = spec["paths"]["/v1/internal/patients/{patient_id}/claim-demographics"]["get"]
    assert internal["security"] == [{"HTTPBearer": []}]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    screening = spec["components"]["schemas"]["MedicalScreeningAnswers"]
    assert set(screening["required"]) == set(screening["properties"]) and "pregnant" in screening["required"]
