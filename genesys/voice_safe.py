"""Voice-safe validation: the last local gate before participant attributes go to Genesys Cloud.

Genesys' `ParticipantAttributes` body is `{"attributes": {string: string}}`. Genesys documents few limits
(a 256-character value limit for flows, a 512,000-byte request limit), so the limits here are conservative
and configurable. Validation collects every problem, never just the first, and the only way to obtain a
`VoiceSafeAttributes` (the one type the writer accepts) is through `check_attributes`, so an invalid map
cannot be sent.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal, cast

LongValuePolicy = Literal["truncate", "reject"]

# Genesys' documented request limit; the configurable body limit must stay well under it.
GENESYS_REQUEST_BYTES_MAX = 512_000
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""C0 and C1 controls, DEL and the Unicode line and paragraph separators: what breaks a line or a log line, or
cannot be shown. The one definition for the app (logs, previews); `profiles/flatten.py` keeps an equal copy because
the pure layer imports only the standard library (a test holds the two equal)."""
_PREVIEW_CHARS = 40


class VoiceSafeSettingsError(ValueError):
    """A `[voice_safe]` setting is invalid; `setting` names it and `problem` says what is wrong."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


@dataclass(frozen=True, slots=True)
class VoiceSafeLimits:
    """Conservative limits for one participant's attribute map."""

    max_value_chars: int = 256
    """The one documented value limit (Architect's Set Participant Data)."""
    max_key_chars: int = 128
    max_attributes: int = 100
    max_body_bytes: int = 64_000
    """Far below Genesys' 512,000-byte request limit, leaving room for other writers' keys."""
    long_values: LongValuePolicy = "truncate"

    def __post_init__(self) -> None:
        for name, low, high in (
            ("max_value_chars", 1, 65_536),
            ("max_key_chars", 1, 1_024),
            ("max_attributes", 1, 10_000),
            ("max_body_bytes", 64, GENESYS_REQUEST_BYTES_MAX),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise VoiceSafeSettingsError(
                    name, f"must be a whole number from {low:,} to {high:,}, not {value!r}"
                )
        if self.long_values not in ("truncate", "reject"):
            raise VoiceSafeSettingsError(
                "long_values", f'must be "truncate" or "reject", not {self.long_values!r}'
            )

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> VoiceSafeLimits:
        """Build limits from a `[voice_safe]` settings table; unknown keys are refused by name."""
        known = {f.name for f in fields(cls)}
        for key in table:
            if key not in known:
                raise VoiceSafeSettingsError(
                    str(key), f"is not a voice_safe setting (known: {', '.join(sorted(known))})"
                )
        return cls(**dict(table))


@dataclass(frozen=True, slots=True)
class VoiceSafetyProblem:
    """One reason an attribute map may not be sent."""

    key: str
    rule: str
    message: str
    value_preview: str = ""

    def __str__(self) -> str:
        preview = f" (value {self.value_preview})" if self.value_preview else ""
        return f"{self.key}: {self.message}{preview}"


@dataclass(frozen=True, slots=True)
class Truncation:
    """A value that was shortened to fit `max_value_chars` because the policy is "truncate"."""

    key: str
    original_chars: int
    kept_chars: int

    def __str__(self) -> str:
        return f"{self.key}: value cut from {self.original_chars:,} to {self.kept_chars:,} characters"


_CHECKED = object()


class VoiceSafeAttributes:
    """An attribute map that passed `check_attributes`: the only thing the Genesys writer sends.

    Only `check_attributes` can make one (the constructor wants a private token), and the map is a read-only
    copy, so what was checked is what is sent.
    """

    __slots__ = ("_attributes", "_body_bytes")

    def __init__(self, attributes: Mapping[str, str], body_bytes: int, *, _checked: object = None) -> None:
        if _checked is not _CHECKED:
            raise TypeError("VoiceSafeAttributes are made only by check_attributes(); check the map first")
        self._attributes: Mapping[str, str] = MappingProxyType(dict(attributes))
        self._body_bytes = body_bytes

    @property
    def attributes(self) -> Mapping[str, str]:
        return self._attributes

    @property
    def body_bytes(self) -> int:
        return self._body_bytes

    def body(self) -> dict[str, dict[str, str]]:
        """The `ParticipantAttributes` request body."""
        return {"attributes": dict(self._attributes)}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VoiceSafeAttributes) and dict(self._attributes) == dict(other._attributes)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._attributes.items())))

    def __repr__(self) -> str:
        return f"VoiceSafeAttributes({len(self._attributes)} attributes, {self._body_bytes:,} bytes)"


def unchecked_attributes_for_tests(attributes: Mapping[str, object]) -> VoiceSafeAttributes:
    """A VoiceSafeAttributes that skipped the check, for tests of how Genesys rejects bad bodies. Never in app
    code: it is the one way around the guarantee, named so that a reviewer sees it."""
    forged = cast(Mapping[str, str], attributes)  # deliberately unchecked: that is what these tests need
    return VoiceSafeAttributes(forged, 0, _checked=_CHECKED)


@dataclass(frozen=True, slots=True)
class VoiceSafetyReport:
    """Everything `check_attributes` found: the checked map, the problems and the truncations."""

    attributes: Mapping[str, str]
    problems: tuple[VoiceSafetyProblem, ...]
    truncations: tuple[Truncation, ...]
    body_bytes: int
    _sendable: VoiceSafeAttributes | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def sendable(self) -> VoiceSafeAttributes:
        """The map to send; raises ValueError when problems were found, so nothing invalid is sent."""
        if self._sendable is None:
            raise ValueError(
                f"attributes are not voice-safe ({len(self.problems)} problem(s)): "
                + "; ".join(str(p) for p in self.problems[:5])
            )
        return self._sendable


def value_preview(value: object) -> str:
    """A short, single-line, quoted preview of a value for error messages."""
    if isinstance(value, str):
        shown = CONTROL_CHARACTERS.sub(lambda m: f"\\x{ord(m.group()):02x}", value[: _PREVIEW_CHARS + 1])
        if len(value) > _PREVIEW_CHARS:
            return f'"{shown[:_PREVIEW_CHARS]}…" ({len(value):,} chars)'
        return f'"{shown}"'
    if isinstance(value, Mapping):
        return f"an object with {len(value):,} key(s)"
    if isinstance(value, list | tuple):
        return f"a list of {len(value):,} item(s)"
    if value is None:
        return "null"
    return f"{type(value).__name__} {str(value)[:_PREVIEW_CHARS]}"


# The encoder httpx uses for `json=` bodies, built once: json.dumps with options builds a new one per call.
_HTTPX_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_BODY_FRAME = len('{"attributes":{}}')
_GOOD_KEYS_KEPT = 10_000
_JSON_ESCAPED_BYTES = bytes(range(0x20)) + b'"\\'  # the only characters JSON escapes when not ensure_ascii


def body_size(attributes: Mapping[str, str]) -> int:
    """Bytes of the request body exactly as httpx encodes it (compact UTF-8 JSON); the strings must be
    encodable as UTF-8 (no unpaired surrogates)."""
    size = _unescaped_body_size(attributes, "".join([*attributes.keys(), *attributes.values()]))
    return size if size is not None else len(_HTTPX_JSON.encode({"attributes": attributes}).encode("utf-8"))


def _unescaped_body_size(attributes: Mapping[str, str], joined: str) -> int | None:
    """The body size counted without encoding JSON, when no character needs a JSON escape; else None. `joined` is
    every key and value joined.

    UTF-8 continuation bytes are all >= 0x80, so escapes can be found in the encoded bytes directly.
    Raises UnicodeEncodeError for an unpaired surrogate.
    """
    raw = joined.encode("utf-8")
    if len(raw.translate(None, _JSON_ESCAPED_BYTES)) != len(raw):
        return None
    pairs = len(attributes)
    return _BODY_FRAME + len(raw) + 5 * pairs + max(pairs - 1, 0)  # "k":"v" quotes and colon; commas


def _plainly_valid(attributes: Mapping[object, object], limits: VoiceSafeLimits,
                   good_keys: set[str] | None) -> tuple[Mapping[str, str], int] | None:
    """The map and its body size when every pair is obviously fine, else None: the common case, checked with
    C-level passes over all keys and values at once instead of a Python loop, building no problem."""
    as_text = _as_text(attributes)
    if as_text is None:
        return None
    strings, joined = as_text
    if not strings:
        return strings, _BODY_FRAME
    if len(strings) > limits.max_attributes or max(map(len, strings.values())) > limits.max_value_chars:
        return None
    keys_known = good_keys is not None and good_keys.issuperset(strings)
    if not keys_known and not _plain_keys(strings, limits):
        return None
    try:
        size = _unescaped_body_size(strings, joined)
        if size is None:  # a character JSON escapes: counted as httpx encodes it
            size = body_size(strings)
    except UnicodeEncodeError:  # an unpaired surrogate: the slow path says where
        return None
    if size > limits.max_body_bytes:
        return None
    if good_keys is not None and not keys_known:
        if len(good_keys) >= _GOOD_KEYS_KEPT:
            good_keys.clear()
        good_keys.update(strings)
    return strings, size


def _as_text(attributes: Mapping[object, object]) -> tuple[Mapping[str, str], str] | None:
    """The map as text, with every key and value joined; None when one is not text. The join is one C-level pass
    that both checks the types and gives the text the body size is counted from (a set of their types and a
    second join cost 1.5 µs more per profile in bench/profile_layer.py)."""
    try:
        joined = "".join(cast("list[str]", [*attributes, *attributes.values()]))
    except TypeError:
        return None
    return cast("Mapping[str, str]", attributes), joined


def _plain_keys(keys: Collection[str], limits: VoiceSafeLimits) -> bool:
    """Whether no key breaks a key rule (a conservative test: an unusual key takes the slow path)."""
    return (
        max(map(len, keys)) <= limits.max_key_chars
        and "" not in keys
        and list(map(str.strip, keys)) == list(keys)
        and "".join(keys).isprintable()  # no control character (nor any other unprintable one)
    )


class VoiceSafeChecker:
    """`check_attributes` for map after map under one set of limits, remembering the keys that passed.

    Attribute keys repeat from profile to profile, values do not: known keys skip the key rules (about 3.5 µs of
    a profile's 38 in bench/profile_layer.py; docs/performance.md). Whoever checks many maps keeps one
    (`sync.AttributeRules` does). Bounded: cleared when full.
    """

    __slots__ = ("_good_keys", "limits")

    def __init__(self, limits: VoiceSafeLimits) -> None:
        self.limits = limits
        self._good_keys: set[str] = set()

    def check(self, attributes: object) -> VoiceSafetyReport:
        return _check(attributes, self.limits, self._good_keys)


def check_attributes(attributes: object, limits: VoiceSafeLimits) -> VoiceSafetyReport:
    """Check a candidate attribute map against the limits and report every problem found."""
    return _check(attributes, limits, None)


def _check(attributes: object, limits: VoiceSafeLimits, good_keys: set[str] | None) -> VoiceSafetyReport:
    if not isinstance(attributes, Mapping):
        problem = VoiceSafetyProblem(
            "(map)", "not_a_map", "attributes must be an object of string keys to string values",
            value_preview(attributes),
        )
        return VoiceSafetyReport({}, (problem,), (), 0)
    plain = _plainly_valid(attributes, limits, good_keys)
    if plain is not None:
        valid = VoiceSafeAttributes(*plain, _checked=_CHECKED)
        return VoiceSafetyReport(valid.attributes, (), (), valid.body_bytes, valid)

    problems: list[VoiceSafetyProblem] = []
    truncations: list[Truncation] = []
    checked = {}
    for key, value in attributes.items():
        if not isinstance(key, str):
            problems.append(VoiceSafetyProblem(
                repr(key), "key_type", f"key is a {type(key).__name__}; keys must be strings"
            ))
            continue
        key_problems = _key_problems(key, limits)
        problems.extend(key_problems)
        if not isinstance(value, str):
            problems.append(VoiceSafetyProblem(
                key, "value_type",
                f"value is {_json_type(value)}; Genesys accepts only strings (send numbers and booleans"
                " as text)",
                value_preview(value),
            ))
            continue
        if not _is_utf8(value):
            problems.append(VoiceSafetyProblem(
                key, "value_encoding", "value holds an unpaired surrogate (broken Unicode) and cannot be sent",
                value_preview(value),
            ))
            continue
        if len(value) > limits.max_value_chars:
            if limits.long_values == "truncate":
                truncations.append(Truncation(key, len(value), limits.max_value_chars))
                value = value[: limits.max_value_chars]
            else:
                problems.append(VoiceSafetyProblem(
                    key, "value_length",
                    f"value has {len(value):,} characters, over the limit of {limits.max_value_chars:,}"
                    ' (shorten it, exclude the field, or set long_values = "truncate")',
                    value_preview(value),
                ))
        if not key_problems:
            checked[key] = value

    if len(attributes) > limits.max_attributes:
        problems.append(VoiceSafetyProblem(
            "(map)", "attribute_count",
            f"{len(attributes):,} attributes, over the limit of {limits.max_attributes:,}"
            " (exclude fields in the mapping or raise max_attributes)",
        ))
    size = body_size(checked)
    if size > limits.max_body_bytes:
        problems.append(VoiceSafetyProblem(
            "(map)", "body_size",
            f"request body is {size:,} bytes, over the limit of {limits.max_body_bytes:,}"
            " (exclude fields or lower max_value_chars)",
        ))
    sendable = None if problems else VoiceSafeAttributes(checked, size, _checked=_CHECKED)
    shown = sendable.attributes if sendable is not None else MappingProxyType(checked)
    return VoiceSafetyReport(shown, tuple(problems), tuple(truncations), size, sendable)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _key_problems(key: str, limits: VoiceSafeLimits) -> list[VoiceSafetyProblem]:
    problems = []
    if not key.strip():
        problems.append(VoiceSafetyProblem(repr(key), "key_empty", "key is empty or only white space"))
        return problems
    if len(key) > limits.max_key_chars:
        problems.append(VoiceSafetyProblem(
            key[:_PREVIEW_CHARS] + "…", "key_length",
            f"key has {len(key):,} characters, over the limit of {limits.max_key_chars:,}",
        ))
    if CONTROL_CHARACTERS.search(key):
        problems.append(VoiceSafetyProblem(
            value_preview(key), "key_characters", "key contains control characters or line breaks"
        ))
    if key != key.strip():
        problems.append(VoiceSafetyProblem(
            value_preview(key), "key_characters", "key starts or ends with white space"
        ))
    if not _is_utf8(key):
        problems.append(VoiceSafetyProblem(
            value_preview(key), "key_encoding", "key holds an unpaired surrogate (broken Unicode)"
        ))
    return problems


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        return "a number"
    if isinstance(value, Mapping):
        return "a nested object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"
