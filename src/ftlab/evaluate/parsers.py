"""Answer parsers: pure functions from a model's generated text to its final answer (or None).

A parser never raises on model output: text it cannot read gives None, which the metrics count as
"unparsed" and score as wrong (see ftlab.evaluate.metrics.classification_metrics).

    from ftlab.evaluate.parsers import get_parser

    get_parser("gsm8k")("3 + 4 = 7, so she pays $1,234.\\n#### 1,234")  # "1234"
    get_parser("boxed")(r"so \\boxed{\\frac{1}{2}}")                       # "\\frac{1}{2}"
    get_parser({"regex": r"Answer: (\\w+)"})("Answer: P ... Answer: N")   # "N" (last match wins)
    get_parser("boxd")  # UnknownNameError: Unknown answer parser 'boxd'. Did you mean 'boxed'? ...

Run the tests: `.venv/bin/pytest tests/evaluate/test_parsers.py -q`
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ftlab.errors import SpecError
from ftlab.plugins import Plugins

Parser = Callable[[str], str | None]  # text -> answer, None when unparseable

parsers: Plugins[Parser] = Plugins("answer parser")

# One number as people and models write it. Why each piece:
# - (?<![\w./]) : a number glued to a letter, digit, "_", "." or "/" is part of a word, a version
#   or a path ("step2", "H2O", "v1.2", "x_3", "3/4/2020" -> 3), not an answer. Letters AFTER a number are allowed: units
#   ("5kg", "3rd").
# - sign [-+\u2212]: ASCII minus, plus, and the Unicode minus some models emit. Because the
#   lookbehind sits before the sign, "10-20" reads as 10 and 20, never -20.
# - \$? : currency before the digits ("-$5"); other symbols (EUR, GBP, %) are simply not part of it.
# - thousands groups only when well formed ("1,234,567"); "1,2,3" is a list of three numbers.
# - a decimal part needs a digit after the point, so a sentence's full stop ("is 5.") is dropped.
# - an integer fraction "a/b" is kept whole (see gsm8k docstring).
_NUMBER = re.compile(
    r"(?<![\w./])(?P<sign>[-+\u2212]?)\$?"
    r"(?:(?P<int>[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)"
    r"(?:(?P<frac>\.[0-9]+)|/(?P<den>[0-9]+)(?![0-9/]|\.[0-9]))?"
    r"|(?P<bare>\.[0-9]+))"  # ".5"
)


def _normalise(match: re.Match[str]) -> str:
    """Canonical text of one _NUMBER match: no commas, "+", "$" or leading zeros; "5.00" -> "5"."""
    negative = match["sign"] in ("-", "\u2212")
    digits = (match["int"] or "0").replace(",", "") + (match["frac"] or match["bare"] or "")
    if match["den"] is not None:
        text = f"{int(digits)}/{int(match['den'])}"
        return "-" + text if negative and int(digits) != 0 else text
    value = Decimal(digits)
    if negative:
        value = -value
    if value == value.to_integral_value():
        return str(int(value))  # also turns "-0" into "0"
    return format(value.normalize(), "f")  # minimal decimals: "2.50" -> "2.5", never "2.5E+1"


def _numbers(text: str) -> list[str]:
    return [_normalise(m) for m in _NUMBER.finditer(text)]


@parsers.register("gsm8k")
def gsm8k(text: str) -> str | None:
    """The final numeric answer, GSM8K convention (Cobbe et al. 2021; lm-eval's gsm8k task).

    Reference solutions end in "#### <answer>". If the text contains "####", the answer is the
    FIRST number after the LAST "####" (the marker announces the answer; what follows it, like
    "#### 18 dollars since 3*6", is justification). If that segment has no number the result is
    None: the model declared an answer that is not a number, and falling back to a number from
    its reasoning would credit it for something it did not answer. Without "####", the answer is
    the LAST number in the text (lm-eval's "flexible-extract"): models state the result last.

    Normalisation, so that "$1,234.00" and "1234" compare equal as strings:
    thousands commas, "$", "+", leading zeros and trailing zero decimals are dropped; integers
    print without decimals and others with minimal decimals ("2.50" -> "2.5"); the Unicode minus
    becomes "-". Units and "%" after a number are ignored ("5 dollars", "5%" -> "5").

    Decisions: numbers glued to a preceding letter are not numbers ("step2", "H2O"). An integer
    fraction keeps its form, "3/4" -> "3/4": GSM8K answers are integers, so a fraction is wrong
    either way, and keeping it is truthful evidence where "4" (its last number) would be a
    made-up answer. Scientific notation is not read ("1e3" -> "1").
    """
    if "####" in text:
        found = _numbers(text.rsplit("####", 1)[1])
        return found[0] if found else None
    found = _numbers(text)
    return found[-1] if found else None


_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")


@parsers.register("boxed")
def boxed(text: str) -> str | None:
    """The content of the LAST \\boxed{...} or \\fbox{...}, the MATH convention (Hendrycks et al.
    2021, `last_boxed_only_string`).

    Nested braces are matched ("\\boxed{\\frac{1}{2}}" -> "\\frac{1}{2}") and escaped braces
    ("\\{", "\\}") do not count. None when there is no box, when the last box never closes (a
    generation cut by max_new_tokens has no final answer, and an earlier box was not it either)
    or when the box is empty. The brace-less form "\\boxed 5" is not read.
    """
    opens = list(_BOX_OPEN.finditer(text))
    if not opens:
        return None
    start = opens[-1].end()
    depth, i = 1, start
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2  # skip the escaped character, e.g. "\{" inside a set
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:i].strip() or None
        i += 1
    return None


def _is_punctuation(char: str) -> bool:
    # Unicode categories P* (punctuation) and S* (symbols: "*", "`", "$"); covers markdown and quotes.
    return unicodedata.category(char)[0] in "PS"


@parsers.register("first_token")
def first_token(text: str) -> str | None:
    """The first whitespace-delimited word, stripped of surrounding punctuation and markdown,
    for label answers read from text ("P." -> "P", "**Accept**" -> "Accept", "(B)" -> "B").

    Tokens made only of punctuation ("**", "-", ">") are skipped: they are markdown decoration
    before the answer, not an answer. None for empty or all-punctuation text. Case is kept; the
    caller compares against its label set.
    """
    for token in text.split():
        start, end = 0, len(token)
        while start < end and _is_punctuation(token[start]):
            start += 1
        while end > start and _is_punctuation(token[end - 1]):
            end -= 1
        if start < end:
            return token[start:end]
    return None


def regex_parser(pattern: str, group: int | str = 1) -> Parser:
    """A parser returning `group` of the LAST match of `pattern` (stripped; None if no match).

    Last match wins because models often restate the question or the answer format before
    answering ("Answer with 'Answer: X'. ... Answer: N"). The pattern is compiled once here, so a
    bad pattern fails when the spec is loaded, not after an hour of generation. Flags go inline,
    e.g. "(?i)answer: (\\w+)".
    """
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        raise SpecError([f"answer parser regex {pattern!r} is not a valid regular expression: {err}"]) from None
    if isinstance(group, bool) or not isinstance(group, (int, str)):
        raise SpecError([f"answer parser regex {pattern!r}: group must be an int or a name, got {group!r}"])
    if isinstance(group, int) and not 0 <= group <= compiled.groups:
        raise SpecError(
            [f"answer parser regex {pattern!r} has {compiled.groups} group(s); group {group} does not exist"]
        )
    if isinstance(group, str) and group not in compiled.groupindex:
        names = ", ".join(compiled.groupindex) or "(none)"
        raise SpecError([f"answer parser regex {pattern!r} has no group named {group!r}; named groups: {names}"])

    def parse(text: str) -> str | None:
        last = None
        for last in compiled.finditer(text):
            pass
        if last is None or last.group(group) is None:
            return None
        return last.group(group).strip() or None

    parse.__doc__ = f"Group {group!r} of the last match of {pattern!r}."
    return parse


def get_parser(spec: str | dict[str, Any]) -> Parser:
    """Resolve a spec value: a registered name ("gsm8k") or {"regex": "...", "group": 1}."""
    if isinstance(spec, str):
        return parsers.get(spec)
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"regex", "group"})
        if "regex" not in spec or unknown:
            raise SpecError([f"answer parser {spec!r}: expected keys 'regex' and optional 'group'"
                             + (f"; unknown: {', '.join(unknown)}" if unknown else "")])
        return regex_parser(spec["regex"], spec.get("group", 1))
    raise SpecError([f"answer parser must be a name or {{'regex': ...}}, got {type(spec).__name__}"])
