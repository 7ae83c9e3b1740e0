"""Answer parsers: each convention on its own edge cases; the registry and the regex factory."""

from __future__ import annotations

import pytest

from ftlab.errors import SpecError, UnknownNameError
from ftlab.evaluate.parsers import (
    GSM8K_PARSERS,
    boxed,
    first_token,
    get_parser,
    get_parsers,
    gsm8k_flexible,
    gsm8k_normalise,
    gsm8k_strict,
    parsers,
    regex_parser,
)


# (text, strict, flexible): expected values worked by hand from lm-eval's gsm8k.yaml filters and
# exact_match normalisation (quoted in ftlab/evaluate/parsers.py).
GSM8K_CASES = [
    ("She pays 3 * 4 = 12 dollars.\n#### 12", "12", "12"),
    ("#### Step 1: 4 * 5 = 20", None, "20"),  # the defect: the old mixed rule read 1 here
    ("#### 1,234", "1234", "1234"),  # commas removed
    ("#### 1,234,567", "1234567", "1234567"),
    ("#### $5", None, "5"),  # strict wants a digit, "-", "." or "," right after "#### "
    ("The total is $5.", None, "5"),  # "$5." -> "$" and the trailing "." removed
    ("-$5 was lost", None, "-5"),
    ("#### -3.", "-3", "-3"),  # one trailing "." removed
    ("#### 4\nwait, redo\n#### 5", "4", "5"),  # strict: first marker; flexible: last number
    ("#### 10\n\nQuestion: 9 apples? Answer: 9 + 2 = 11", "10", "11"),  # run-on generation
    ("####5", None, "5"),  # lm-eval's strict pattern needs the space
    ("so 5.00", None, "5.00"),  # no numeric normalisation, as in lm-eval
    ("pages 10-20", None, "-20"),  # flexible's "-?" takes the hyphen (lm-eval's behaviour)
    ("a 7", None, "7"),  # one digit: the second alternative, (-?[0-9]+)
    ("commas ,, only", None, None),  # ",," matches [$0-9.,]{2,} but normalises to nothing
    ("#### 3.14.", "3.14", "3.14"),
    ("no number here", None, None),
    ("", None, None),
]


@pytest.mark.parametrize(("text", "strict", "flexible"), GSM8K_CASES)
def test_gsm8k_strict_and_flexible_follow_lm_eval(text, strict, flexible):
    assert gsm8k_strict(text) == strict
    assert gsm8k_flexible(text) == flexible


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72", "72"),
        ("It costs $1,234.\n#### 1,234", "1234"),
        ("1,234.", "1234"),  # a bare reference answer
        ("#### -5", "-5"),
    ],
)
def test_gsm8k_normalise_reads_references_as_lm_eval_does(reference, expected):
    assert gsm8k_normalise(reference) == expected


def test_gsm8k_names_both_conventions():
    assert get_parsers("gsm8k") == {"strict": gsm8k_strict, "flexible": gsm8k_flexible} == GSM8K_PARSERS
    assert get_parser("gsm8k") is gsm8k_strict  # one answer per text: lm-eval's strict-match
    assert get_parser("gsm8k_flexible") is gsm8k_flexible
    assert get_parsers("boxed") == {"boxed": boxed}
    assert list(get_parsers({"regex": "(a)"})) == ["regex"]
    with pytest.raises(UnknownNameError, match="Did you mean 'gsm8k_strict'"):
        get_parsers("gsm8k_strikt")
    # lm-eval's correctness rule: the parsed answer equals the normalised reference
    reference = "48 + 24 = <<48+24=72>>72\n#### 72"
    assert gsm8k_flexible("She sold $72.") == gsm8k_normalise(reference)
    assert gsm8k_strict("She sold $72.") is None


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
    assert set(parsers.names()) >= {"gsm8k", "gsm8k_strict", "gsm8k_flexible", "boxed", "first_token"}
    assert get_parser({"regex": r"is (\d+)"})("is 3, is 4") == "4"
    assert get_parser({"regex": r"(a)(b)", "group": 2})("ab") == "b"
    with pytest.raises(UnknownNameError, match="Did you mean 'boxed'"):
        get_parser("boxd")
    with pytest.raises(SpecError, match="unknown: flags"):
        get_parser({"regex": "a", "flags": "i"})
    with pytest.raises(SpecError):
        get_parser(3)  # type: ignore[arg-type]
