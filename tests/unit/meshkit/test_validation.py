"""The field helpers every backend shares once a request's proto rules passed."""

from __future__ import annotations

from meshkit.validation import is_uuid, normalise, page_or_default


def test_normalise_composes_and_trims() -> None:
    assert normalise("  Jose\u0301 \t") == "José"


def test_pages_not_sent_take_the_defaults() -> None:
    assert page_or_default(0, 0) == (1, 20)
    assert page_or_default(3, 50) == (3, 50)


def test_is_uuid_takes_the_canonical_form_in_any_case() -> None:
    assert is_uuid("0b9f4a8e-5a7e-4c61-9d7c-3f1f6a2b9c10")
    assert is_uuid("0B9F4A8E-5A7E-4C61-9D7C-3F1F6A2B9C10")
    for bad in (
        "0b9f4a8e5a7e4c619d7c3f1f6a2b9c10",
        "",
        "../etc/passwd",
        "0b9f4a8e-5a7e-4c61-9d7c-3f1f6a2b9c1\u0660",  # an Arabic-Indic zero,
    ):
        assert not is_uuid(bad)
