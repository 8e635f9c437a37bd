"""If-Match as RFC 9110 reads it: entity tags compared strongly, ``*`` or no header asks nothing, garbage is invalid."""

from __future__ import annotations

import pytest
from fastapi.exceptions import RequestValidationError

from carecoord_shared.errors import PreconditionFailed
from carecoord_shared.http.preconditions import MAX_IF_MATCH, parse_if_match
from carecoord_shared.preconditions import etag


@pytest.mark.parametrize("header", [None, "*", " * "])
def test_no_header_or_a_star_asks_nothing(header: str | None) -> None:
    parse_if_match(header).check(7, "plan")


@pytest.mark.parametrize("header", ['"7"', ' "3" , "7" ', '"7",W/"7"'])
def test_a_list_holding_the_current_strong_tag_passes(header: str) -> None:
    parse_if_match(header).check(7, "plan")


@pytest.mark.parametrize("header", ['"6"', 'W/"7"', '"07"', '""'])
def test_any_other_tag_fails_with_the_current_one(header: str) -> None:
    with pytest.raises(PreconditionFailed) as failed:
        parse_if_match(header).check(7, "review")
    assert failed.value.current == etag(7) == '"7"'
    assert "review changed" in str(failed.value)


@pytest.mark.parametrize("header", ["7", '"7', '"7" "8"', '"a b"', ",", "", "x" * (MAX_IF_MATCH + 1)])
def test_what_is_not_a_list_of_entity_tags_is_invalid_naming_the_header(header: str) -> None:
    with pytest.raises(RequestValidationError) as invalid:
        parse_if_match(header)
    assert invalid.value.errors()[0]["loc"] == ("header", "If-Match")
