from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bisector.signature import crash_line_from_text, short_message, signature


def test_same_failure_same_signature_across_addresses() -> None:
    a = signature("ValueError: bad object at 0x7f3a2b\nmore detail")
    b = signature("ValueError: bad object at 0x55d0e1\nother detail")
    assert a == b and len(a) == 16
    assert signature("KeyError: 'x'") != signature("KeyError: 'y'")
    assert signature("KeyError: 'x'") != signature("IndexError: 'x'")


@given(st.text(max_size=300))
def test_signature_and_message_never_fail(text: str) -> None:
    assert len(signature(text)) == 16
    msg = short_message(text)
    assert "\n" not in msg and len(msg) <= 500


def test_crash_line_from_rendered_traceback() -> None:
    text = "def f():\n>   import nope\nE   ModuleNotFoundError: No module named 'nope'\n"
    assert crash_line_from_text(text) == "ModuleNotFoundError: No module named 'nope'"
    assert crash_line_from_text("\nlast words\n\n") == "last words"
    assert crash_line_from_text("") == ""
