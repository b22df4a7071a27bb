"""Flatten any JSON-like value into a flat, deterministic `dict[str, str]` with dot-notation keys.

Rules (the README's "Profile layer" section shows examples):
- nested objects become dot-joined keys; lists of scalars become one string joined with ", ", so a list
  that shrinks leaves no stale keys; lists holding objects get indexed keys (`key.0`, `key.1`, …) up to a cap;
- empty containers and `None` are dropped; empty strings are kept, because writing "" clears a value
  that an earlier write set;
- booleans become `true`/`false`; numbers become plain decimals (15 significant digits, the precision a
  double guarantees, so float noise such as 0.30000000000000004 disappears; no exponent below 10^21);
  dates and datetimes become ISO-8601; any other type becomes a deterministic string;
- key segments lose control characters and surrounding white space; a key that would collide with one
  already placed gets a `~2`, `~3`, … suffix and a note, never a silent overwrite;
- the walk is iterative and bounded by `FlattenLimits`; whatever a limit cuts off is reported as a note;
- the result's keys are sorted, so the same input always gives the same keys in the same order.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import math
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

_UNSAFE_KEY_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MEMORY_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_MAX_NOTES = 50
_LIST_SEPARATOR = ", "


class FlattenSettingsError(ValueError):
    """A `[flatten]` setting is invalid; `setting` names it and `problem` says what is wrong."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


@dataclass(frozen=True, slots=True)
class FlattenLimits:
    """Bounds that keep hostile input (deep nesting, huge documents) cheap; each cut is reported."""

    max_depth: int = 16
    """Containers nested deeper than this are dropped (a Slack user object is 4 levels deep)."""
    max_values: int = 20_000
    """Values visited before the walk stops; bounds time on multi-megabyte documents."""
    max_list_items: int = 20
    """Items kept from a list of objects (indexed keys)."""
    max_keys: int = 1_000
    """Keys produced before the walk stops."""
    max_key_chars: int = 256
    """Longer keys are cut (and a collision suffix added where needed)."""
    max_value_chars: int = 4_096
    """Longer strings are clipped here; voice-safe validation applies the (smaller) Genesys limit later."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
                raise FlattenSettingsError(f.name, f"must be a whole number from 1 to 1,000,000, not {value}")
        if self.max_key_chars < 16:
            raise FlattenSettingsError("max_key_chars", "must be at least 16")

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> FlattenLimits:
        """Build limits from a `[flatten]` settings table; unknown keys are refused by name."""
        known = {f.name for f in fields(cls)}
        for key in table:
            if key not in known:
                raise FlattenSettingsError(
                    str(key), f"is not a flatten setting (known: {', '.join(sorted(known))})"
                )
        return cls(**dict(table))


@dataclass(frozen=True, slots=True)
class FlattenNote:
    """Something the flattening changed, cut or could not represent, for the operator to see."""

    kind: str
    """One of: depth, values, keys, list_items, value_clipped, key_cut, collision, notes."""
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


@dataclass(frozen=True, slots=True)
class Flattened:
    """Flat attributes with sorted keys, and the notes about what was cut or renamed on the way."""

    attributes: Mapping[str, str]
    notes: tuple[FlattenNote, ...]


class NoteList:
    """Collects notes up to a cap so hostile input cannot make the report itself unbounded."""

    __slots__ = ("_items", "_overflow")

    def __init__(self) -> None:
        self._items: list[FlattenNote] = []
        self._overflow = 0

    def add(self, kind: str, key: str, message: str) -> None:
        if len(self._items) < _MAX_NOTES:
            self._items.append(FlattenNote(kind, key, message))
        else:
            self._overflow += 1

    def extend(self, notes: tuple[FlattenNote, ...]) -> None:
        for note in notes:
            self.add(note.kind, note.key, note.message)

    def freeze(self) -> tuple[FlattenNote, ...]:
        if self._overflow:
            more = FlattenNote("notes", "", f"{self._overflow:,} more note(s) left out")
            return (*self._items, more)
        return tuple(self._items)


class KeyPlacer:
    """Places keys into a map, cutting long keys and resolving collisions deterministically."""

    __slots__ = ("_max_key_chars", "_notes", "_origins", "placed")

    def __init__(self, max_key_chars: int, notes: NoteList) -> None:
        self._max_key_chars = max_key_chars
        self._notes = notes
        self._origins: dict[str, str] = {}
        self.placed: dict[str, str] = {}

    def place(self, key: str, value: str, origin: str) -> str:
        """Store value under key (or a suffixed variant on collision); returns the key used."""
        if len(key) > self._max_key_chars:
            cut = key[: self._max_key_chars]
            self._notes.add("key_cut", cut, f"key cut from {len(key):,} to {self._max_key_chars} characters")
            key = cut
        if key in self.placed:
            key = self._free_variant(key, origin)
        self.placed[key] = value
        self._origins[key] = origin
        return key

    def _free_variant(self, key: str, origin: str) -> str:
        number = 2
        while True:
            suffix = f"~{number}"
            candidate = key[: self._max_key_chars - len(suffix)] + suffix
            if candidate not in self.placed:
                first = self._origins[key]
                sources = "two source fields" if first == origin else f"{first!r} and {origin!r}"
                self._notes.add("collision", key, f"{sources} both become this key; the later one is"
                                f" kept as {candidate!r}")
                return candidate
            number += 1


def clean_key_segment(segment: str) -> str:
    """A key segment without control characters or surrounding white space ("_" if nothing is left)."""
    if segment and segment.isprintable() and not segment[0].isspace() and not segment[-1].isspace():
        return segment
    cleaned = _UNSAFE_KEY_CHARACTERS.sub("", segment).strip()
    return cleaned or "_"


def scalar_text(value: object) -> str | None:
    """The canonical text of a scalar; None for `None` (dropped). Containers are not scalars."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return _int_text(value)  # type: ignore[arg-type]
    if kind is float:
        return _float_text(value)  # type: ignore[arg-type]
    if value is None:
        return None
    return _other_text(value)


def _int_text(number: int) -> str:
    try:
        return str(number)
    except ValueError:  # over Python's int-to-text digit limit: hex has no such limit
        return format(number, "#x")


def _float_text(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    return _decimal_text(decimal.Decimal(format(number, ".15g")))


def _decimal_text(number: decimal.Decimal) -> str:
    if not number.is_finite():
        return "NaN" if number.is_nan() else ("Infinity" if number > 0 else "-Infinity")
    if number.is_zero():
        return "0"
    normal = number.normalize()
    if -7 <= normal.adjusted() < 21:
        return format(normal, "f")
    return format(normal, "E")


def _other_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        inner = scalar_text(value.value)
        return inner if inner is not None else value.name
    if isinstance(value, int):
        return _int_text(int(value))
    if isinstance(value, float):
        return _float_text(float(value))
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, decimal.Decimal):
        return _decimal_text(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _float_text(value.total_seconds())
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "base64:" + base64.b64encode(bytes(value)).decode("ascii")
    if type(value).__repr__ is object.__repr__ and type(value).__str__ is object.__str__:
        return f"<{type(value).__module__}.{type(value).__qualname__}>"
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - a foreign __str__ may raise anything; the type name still identifies it
        return f"<{type(value).__module__}.{type(value).__qualname__}>"
    return _MEMORY_ADDRESS.sub("", text)


def _is_container(value: object) -> bool:
    kind = type(value)
    if kind is dict or kind is list:
        return True
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return False
    return isinstance(value, Mapping | list | tuple | set | frozenset)


def flatten(value: object, limits: FlattenLimits | None = None) -> Flattened:
    """Flatten a JSON-like value (from `json.loads`, or with the extra types above) into text attributes."""
    limits = limits or FlattenLimits()
    notes = NoteList()
    placer = KeyPlacer(limits.max_key_chars, notes)
    walk(value, "", 0, limits, placer, notes)
    return Flattened(dict(sorted(placer.placed.items())), notes.freeze())


def walk(value: object, root_key: str, root_depth: int, limits: FlattenLimits, placer: KeyPlacer,
         notes: NoteList) -> None:
    """Flatten `value` under `root_key` into `placer`, depth first in document order.

    The stack holds iterators rather than nodes, so deep input stays off the C stack and a wide node is
    read lazily: the budget stops the walk part-way through a huge object without first listing it.
    """
    budget = _Budget(limits, placer, notes)
    children = _descend(root_key or "value", value, limits, placer, notes, budget)
    if children is None:
        return
    stack: list[tuple[str, Iterator[tuple[str, object]], int]] = [(root_key, children, root_depth + 1)]
    while stack:
        key, children, depth = stack[-1]
        for segment, child in children:
            if budget.spent():
                return
            child_key = f"{key}.{clean_key_segment(segment)}" if key else clean_key_segment(segment)
            if not _is_container(child):
                text = scalar_text(child)
                if text is not None:
                    placer.place(child_key, clip_value(text, child_key, limits, notes), child_key)
                continue
            if depth >= limits.max_depth:
                notes.add("depth", child_key, f"nested deeper than {limits.max_depth} levels; dropped")
                continue
            grandchildren = _descend(child_key, child, limits, placer, notes, budget)
            if grandchildren is not None:
                stack.append((child_key, grandchildren, depth + 1))
                break
        else:
            stack.pop()


def _descend(key: str, node: object, limits: FlattenLimits, placer: KeyPlacer, notes: NoteList,
             budget: _Budget) -> Iterator[tuple[str, object]] | None:
    """The children to walk below `node`, or None when `node` was placed whole (a scalar, a scalar list)."""
    if isinstance(node, Mapping):
        return _items(node)
    if isinstance(node, set | frozenset):  # sorted by text: hash seeds must not change the output
        node = sorted(node, key=lambda item: scalar_text(item) or "")
    if isinstance(node, list | tuple):
        if any(_is_container(item) for item in node):
            if len(node) > limits.max_list_items:
                notes.add("list_items", key, f"list has {len(node):,} items; kept the first "
                          f"{limits.max_list_items}")
            return ((str(index), item) for index, item in enumerate(node[: limits.max_list_items]))
        _place_scalar_list(key, node, limits, placer, notes, budget)
        return None
    text = scalar_text(node)
    if text is not None:
        placer.place(key, clip_value(text, key, limits, notes), key)
    return None


class _Budget:
    """Counts values visited and keys placed; says once, with a note, when the walk must stop."""

    __slots__ = ("_limits", "_notes", "_placer", "_visited")

    def __init__(self, limits: FlattenLimits, placer: KeyPlacer, notes: NoteList) -> None:
        self._limits, self._placer, self._notes, self._visited = limits, placer, notes, 0

    def spent(self) -> bool:
        self._visited += 1
        if self._visited > self._limits.max_values:
            self._notes.add("values", "", f"stopped after {self._limits.max_values:,} values; the rest of"
                            " the input was ignored")
            return True
        if len(self._placer.placed) >= self._limits.max_keys:
            self._notes.add("keys", "", f"stopped at {self._limits.max_keys:,} keys; the rest of the input"
                            " was ignored")
            return True
        return False


def _items(mapping: Mapping[object, object]) -> Iterator[tuple[str, object]]:
    for key, child in mapping.items():
        if type(key) is str:
            yield key, child
        else:
            text = scalar_text(key)
            yield ("null" if text is None else text), child


def _place_scalar_list(key: str, items: list[object] | tuple[object, ...], limits: FlattenLimits,
                       placer: KeyPlacer, notes: NoteList, budget: _Budget) -> None:
    parts: list[str] = []
    length = 0
    for item in items:
        if length > limits.max_value_chars or budget.spent():
            break
        text = scalar_text(item)
        if text is not None:
            parts.append(text)
            length += len(text) + len(_LIST_SEPARATOR)
    if parts:
        placer.place(key, clip_value(_LIST_SEPARATOR.join(parts), key, limits, notes), key)


def clip_value(text: str, key: str, limits: FlattenLimits, notes: NoteList) -> str:
    if len(text) <= limits.max_value_chars:
        return text
    notes.add("value_clipped", key, f"{len(text):,} characters clipped to {limits.max_value_chars:,}")
    return text[: limits.max_value_chars]
