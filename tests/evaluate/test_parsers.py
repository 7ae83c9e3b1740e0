"""Answer parsers: each convention on its own edge cases; the registry and the regex factory."""

from __future__ import annotations

import pytest

from ftlab.errors import SpecError, UnknownNameError
from ftlab.evaluate.parsers import boxed, first_token, get_parser, gsm8k, parsers, regex_parser


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She pays 3 * 4 = 12 dollars.\n#### 12", "12"),
        ("#### 1,234", "1234"),
        ("#### 1,234,567", "1234567"),
        ("The total is $5.", "5"),
        ("-$5 was lost", "-5"),
        ("so 5 dollars", "5"),
        ("grew by 5%", "5"),
        ("The answer is 5.", "5"),
        ("+7", "7"),
        ("007", "7"),
        ("5.0", "5"),
        ("5.00", "5"),
        ("2.50", "2.5"),
        ("1,234.50", "1234.5"),
        (".5", "0.5"),
        ("0.0", "0"),
        ("-0", "0"),
        ("it drops to -3", "-3"),
        ("it drops to \u22123", "-3"),  # Unicode minus sign
        ("pages 10-20", "20"),  # a hyphen between numbers is not a sign
        ("1,2,3", "3"),  # a list, not a thousands-separated number
        ("first 1,2345", "2345"),  # malformed grouping is not one number
        ("half is 3/4.", "3/4"),  # fractions kept whole
        ("-1/2", "-1/2"),
        ("3/4/2020", "3"),  # the parts after "/" are not numbers of their own
        ("we have 9 apples in step2", "9"),  # numbers glued to letters are not answers
        ("H2O weighs 12kg", "12"),  # ... but units after a number are fine
        ("version v1.2", None),
        ("1e3", "1"),  # scientific notation is not read (documented)
        ("#### 18 dollars since 3*6", "18"),  # first number after the marker
        ("#### 4\nwait, redo\n#### 5", "5"),  # last marker wins
        ("#### 7\n\nQuestion: 9 apples?", "7"),  # ... and only its first number
        ("guess 42 #### unknown", None),  # marker without a number: no answer, no fallback
        ("####", None),
        ("no number here", None),
        ("", None),
    ],
)
def test_gsm8k(text, expected):
    assert gsm8k(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so \boxed{5}", "5"),
        (r"\boxed{ 12 } and later \boxed{13}", "13"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{\sqrt{\frac{a}{b}}+1}", r"\sqrt{\frac{a}{b}}+1"),
        (r"\fbox{A}", "A"),
        (r"\boxed {7}", "7"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),  # escaped braces do not count
        (r"\boxed{3} then \boxed{\frac{1}{2}", None),  # last box never closes
        (r"\boxed{}", None),
        (r"\boxed 5", None),
        ("the answer is 5", None),
        ("", None),
    ],
)
def test_boxed(text, expected):
    assert boxed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P.", "P"),
        ("**Accept**", "Accept"),
        ("  (B) because", "B"),
        ("** Accept **", "Accept"),  # decoration-only tokens are skipped
        ("- N", "N"),
        ("\"yes\", I think", "yes"),
        ("Don't", "Don't"),  # inner punctuation stays
        ("...", None),
        ("", None),
        ("   \n ", None),
    ],
)
def test_first_token(text, expected):
    assert first_token(text) == expected


def test_regex_parser_takes_the_last_match_and_group():
    parse = regex_parser(r"Answer: (\w+)")
    assert parse("Reply as 'Answer: X'. Answer: P ... final Answer: N") == "N"
    assert parse("nothing") is None
    assert regex_parser(r"(?P<v>[A-Z]) ok", group="v")("A ok, B ok") == "B"
    assert regex_parser(r"\d+", group=0)("1 2 3") == "3"
    assert regex_parser(r"x(y)?")("x") is None  # the group did not take part


def test_regex_parser_errors_name_the_pattern():
    with pytest.raises(SpecError, match=r"'\(unclosed' is not a valid regular expression"):
        regex_parser("(unclosed")
    with pytest.raises(SpecError, match="has 1 group"):
        regex_parser("(a)", group=2)
    with pytest.raises(SpecError, match="no group named 'v'"):
        regex_parser("(a)", group="v")


def test_get_parser_resolves_names_and_regex_specs():
    assert get_parser("gsm8k") is gsm8k
    assert set(parsers.names()) >= {"gsm8k", "boxed", "first_token"}
    assert get_parser({"regex": r"is (\d+)"})("is 3, is 4") == "4"
    assert get_parser({"regex": r"(a)(b)", "group": 2})("ab") == "b"
    with pytest.raises(UnknownNameError, match="Did you mean 'boxed'"):
        get_parser("boxd")
    with pytest.raises(SpecError, match="unknown: flags"):
        get_parser({"regex": "a", "flags": "i"})
    with pytest.raises(SpecError):
        get_parser(3)  # type: ignore[arg-type]
