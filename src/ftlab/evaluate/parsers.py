"""Answer parsers: pure functions from a model's generated text to its final answer (or None).

A parser never raises on model output: text it cannot read gives None, which the metrics count as
"unparsed" and score as wrong (see ftlab.evaluate.metrics.classification_metrics).

    from ftlab.evaluate.parsers import get_parser, get_parsers, gsm8k_normalise, gsm8k_strict

    get_parser("gsm8k_strict")("3 + 4 = 7, so she pays $1,234.\\n#### 1,234")  # "1234"
    get_parser("gsm8k_flexible")("#### Step 1: 4 * 5 = 20")                  # "20" (strict: None)
    get_parsers("gsm8k")  # {"strict": gsm8k_strict, "flexible": gsm8k_flexible}, lm-eval's two filters
    gsm8k_strict(response) == gsm8k_normalise(reference)                  # correctness, lm-eval's rule
    get_parser("boxed")(r"so \\boxed{\\frac{1}{2}}")                       # "\\frac{1}{2}"
    get_parser({"regex": r"Answer: (\\w+)"})("Answer: P ... Answer: N")   # "N" (last match wins)
    get_parser("boxd")  # UnknownNameError: Unknown answer parser 'boxd'. Did you mean 'boxed'? ...

Run the tests: `.venv/bin/pytest tests/evaluate/test_parsers.py -q`
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from ftlab.errors import SpecError
from ftlab.plugins import Plugins

Parser = Callable[[str], str | None]  # text -> answer, None when unparseable

parsers: Plugins[Parser] = Plugins("answer parser")

# lm-eval's GSM8K task (EleutherAI/lm-evaluation-harness, lm_eval/tasks/gsm8k/gsm8k.yaml, version 3.0,
# read at commit 4e7e0d4), quoted exactly:
#   filter_list:
#     - name: "strict-match"      regex_pattern: "#### (\\-?[0-9\\.\\,]+)"   then take_first
#     - name: "flexible-extract"  regex_pattern: "(-?[$0-9.,]{2,})|(-?[0-9]+)"  group_select: -1, then take_first
#   metric exact_match: ignore_case: true, regexes_to_ignore: [",", "\\$", "(?s).*#### ", "\\.$"]
# Its RegexFilter (lm_eval/filters/extraction.py) takes findall()[group_select] (0: the first match,
# -1: the last), keeps the first non-empty group of a multi-group match, strips it, and answers
# "[invalid]" when nothing matches (None here). exact_match removes each regexes_to_ignore pattern
# in that order, from prediction and reference alike, lowercases both, and compares the strings.
_GSM8K_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_GSM8K_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_GSM8K_IGNORE = (",", r"\$", r"(?s).*#### ", r"\.$")


def gsm8k_normalise(text: str) -> str:
    """lm-eval's GSM8K exact_match normalisation of an answer or a reference solution: remove ",",
    "$", everything up to the last "#### " and one trailing "." (in that order), then lowercase.

    Compare a parsed answer with `gsm8k_normalise(reference)`: a GSM8K reference ("... #### 1,234")
    normalises to its final answer ("1234"), and so does a bare one ("1,234."). No other
    normalisation, as in lm-eval: "5.00" and "5" differ, and "5 dollars" is not "5".
    """
    for pattern in _GSM8K_IGNORE:
        text = re.sub(pattern, "", text)
    return text.lower()


def _gsm8k_answer(match: str | tuple[str, ...]) -> str | None:
    if isinstance(match, tuple):  # a multi-group pattern: the first group that took part
        match = next((m for m in match if m), "")
    answer = gsm8k_normalise(match.strip())
    return answer or None  # "," or "$$" matched but normalise to nothing: no answer


@parsers.register("gsm8k_strict")
def gsm8k_strict(text: str) -> str | None:
    r"""lm-eval's GSM8K "strict-match": the FIRST "#### <number>" (regex `#### (\-?[0-9\.\,]+)`),
    normalised by gsm8k_normalise; None when the text has no "#### " followed by a number.

    The format the model was trained to write, and nothing else: "#### Step 1 ... = 20" has no
    answer (the marker is not followed by a number), "####5" neither (lm-eval wants the space).
    """
    found = _GSM8K_STRICT.findall(text)
    return _gsm8k_answer(found[0]) if found else None


@parsers.register("gsm8k_flexible")
def gsm8k_flexible(text: str) -> str | None:
    """lm-eval's GSM8K "flexible-extract": the LAST number-like run in the text (regex
    `(-?[$0-9.,]{2,})|(-?[0-9]+)`, the first group that matched), normalised by gsm8k_normalise.

    Credits a right final number written in any format ("so she pays $1,234." -> "1234",
    "#### Step 1 ... = 20" -> "20"). None when the text has no digit-bearing run.
    """
    found = _GSM8K_FLEXIBLE.findall(text)
    return _gsm8k_answer(found[-1]) if found else None


# lm-eval reports GSM8K as both filters side by side; so does ftlab for parser "gsm8k":
# get_parsers("gsm8k") gives both, and get_parser("gsm8k") (one answer per text) gives strict.
GSM8K_PARSERS: dict[str, Parser] = {"strict": gsm8k_strict, "flexible": gsm8k_flexible}
parsers.register("gsm8k")(gsm8k_strict)


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


def get_parsers(spec: str | dict[str, Any]) -> dict[str, Parser]:
    """Every convention a parser spec stands for, by name: {"strict": ..., "flexible": ...} for
    "gsm8k" (GSM8K_PARSERS, reported side by side as lm-eval does), {"<name>": parser} for any
    other registered name, {"regex": parser} for {"regex": ...}. Errors as get_parser."""
    if spec == "gsm8k":
        return dict(GSM8K_PARSERS)
    return {spec if isinstance(spec, str) else "regex": get_parser(spec)}


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
