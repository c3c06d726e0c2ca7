"""The id rule every service applies to the ids a client sends."""

from __future__ import annotations

import uuid

import pytest
from pydantic import TypeAdapter, ValidationError

from pasar_kit.ids import IdText, is_id


def test_the_ids_the_services_issue_fit_the_rule() -> None:
    assert is_id(str(uuid.uuid4()))
    assert is_id("nope") and is_id("A-1")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x" * 37,
        " abc",
        "abc\n",
        "ab$c",
        "a/b",
        "\u0661\u0662",
        "\uff46\uff55\uff4c\uff4c",
        "a\x00b",
    ],
)
def test_anything_else_is_no_id(value: str) -> None:
    assert not is_id(value)
    with pytest.raises(ValidationError):
        TypeAdapter(IdText).validate_python(value)
