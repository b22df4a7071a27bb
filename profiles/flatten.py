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
import functools
import math
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

_UNSAFE_KEY_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MEMORY_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_MAX_NOTES = 50
_LIST_SEPARATOR = ", "


class ProfileSettingsError(ValueError):
    """A setting of the profile layer is invalid; `setting` names it and `problem` says what is wrong.

    The edge (`cli/settings.py`) catches every package's settings error through this (setting, problem) shape
    and names the file and table; profiles/ imports only the standard library, so the class is its own."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class FlattenSettingsError(ProfileSettingsError):
    """A `[flatten]` setting is invalid."""


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

    @property
    def max_key_chars(self) -> int:
        return self._max_key_chars

    def place(self, key: str, value: str, origin: str) -> None:
        """Store a flattened value under its source key."""
        self.place_at(key, value, origin)

    def place_at(self, key: str, value: str, origin: str) -> str:
        """Store value under key (or a suffixed variant on collision); returns the key used."""
        if len(key) > self._max_key_chars:
            cut = key[: self._max_key_chars]
            self._notes.add("key_cut", cut, f"key cut from {len(key):,} to {self._max_key_chars} characters")
            key = cut
        if key in self.placed:
            key = self._free_variant(key, origin)
        self.placed[key] = value
        self.remember(key, origin)
        return key

    def remember(self, key: str, origin: str) -> None:
        """Record where a key placed directly into `placed` came from, for collision notes."""
        if key != origin:
            self._origins[key] = origin

    def _free_variant(self, key: str, origin: str) -> str:
        number = 2
        while True:
            suffix = f"~{number}"
            candidate = key[: self._max_key_chars - len(suffix)] + suffix
            if candidate not in self.placed:
                first = self._origins.get(key, key)  # fast-path placements are their own origin
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
         notes: NoteList, skip: str | None = None) -> None:
    """Flatten `value` under `root_key` into `placer`, depth first in document order.

    The stack holds iterators rather than nodes, so deep input stays off the C stack and a wide node is
    read lazily: the budget stops the walk part-way through a huge object without first listing it.
    With a `SelectingPlacer` (the mapping), each leaf is decided before it is converted: left-out leaves
    cost a dictionary lookup, kept ones go straight to their attribute key.
    `skip` names one container key to leave out (flatten_user places custom fields itself).
    The loop inlines the common cases (string, bool and int leaves under fresh keys): it is the hot path.
    """
    budget = _Budget(limits, placer, notes)
    children = _descend(root_key or "value", value, limits, placer, notes, budget)
    if children is None:
        return
    placed, max_key_chars = placer.placed, placer.max_key_chars
    max_depth, max_value_chars = limits.max_depth, limits.max_value_chars
    max_values, max_keys = limits.max_values, limits.max_keys
    if isinstance(placer, SelectingPlacer):
        decide, prune, left_out, key_cache = placer.decide, placer.prune, placer.left_out, placer.key_cache
    else:
        decide, prune, left_out, key_cache = None, None, None, KeyCache()
    # Each visit places at most one key, so the key count needs checking only past max_keys visits.
    first_limit = min(max_values, max_keys)
    visited = 0
    stack: list[tuple[str, Iterator[tuple[object, object]], int]] = [(root_key, children, root_depth + 1)]
    while stack:
        key, children, depth = stack[-1]
        prefix = key + "." if key else ""
        known = key_cache.segments_below(key)
        for segment, child in children:
            visited += 1
            if visited > first_limit and (visited > max_values or len(placed) >= max_keys):
                budget.visited = visited
                budget.stop()
                return
            # Only string segments are cached, and no other type equals a string, so any segment may look.
            entry = known.get(segment)  # type: ignore[call-overload]
            if entry is None:
                child_key = prefix + (_clean_segment(segment) if type(segment) is str else _key_text(segment))
                if decide is None:
                    target, why, pruned = child_key, None, None
                else:
                    (target, why), pruned = decide(child_key), prune(child_key)  # type: ignore[misc]
                if type(segment) is str and len(known) < _KEYS_PER_PARENT:
                    known[segment] = (child_key, target, why, pruned)
            else:
                child_key, target, why, pruned = entry
            kind = type(child)
            if kind is str:
                text = child
            elif kind is bool:
                text = "true" if child else "false"
            elif kind is int:
                text = _int_text(child)  # type: ignore[arg-type]
            elif child is None:
                continue
            elif kind is dict or kind is list or _is_container(child):
                if child_key == skip:
                    continue
                if pruned is not None:  # nothing the caller wants lies below: skip the whole container
                    left_out.append(pruned)  # type: ignore[union-attr]
                    continue
                if depth >= max_depth:
                    notes.add("depth", child_key, f"nested deeper than {max_depth} levels; dropped")
                    continue
                if kind is dict:
                    grandchildren = iter(child.items())  # type: ignore[attr-defined]
                else:
                    budget.visited = visited
                    grandchildren = _descend(child_key, child, limits, placer, notes, budget)
                    visited = budget.visited
                if grandchildren is not None:
                    stack.append((child_key, grandchildren, depth + 1))
                    break
                continue
            else:
                text = scalar_text(child)
                if text is None:
                    continue
            if target is None:
                left_out.append(why)  # type: ignore[union-attr]
                continue
            if len(text) > max_value_chars:  # type: ignore[arg-type]
                text = clip_value(text, child_key, limits, notes)  # type: ignore[arg-type]
            if len(target) <= max_key_chars and target not in placed:
                placed[target] = text  # type: ignore[assignment]
            else:
                placer.place_at(target, text, child_key)  # type: ignore[arg-type]
        else:
            stack.pop()


_KEYS_PER_PARENT = 256
_PARENTS_CACHED = 1_024


class KeyCache:
    """Child keys already built under each parent key, with the caller's decision for each.

    Profiles repeat the same keys: reusing the key string (its hash already computed) and its decision
    saves building, cleaning and deciding the same key for every profile. Bounded: cleared when full.
    """

    __slots__ = ("_by_parent", "plans")

    def __init__(self) -> None:
        self._by_parent: dict[str, dict[str, tuple[str, str | None, Any, Any]]] = {}
        self.plans: dict[Any, Any] = {}
        """Whole placement plans by their caller's key (custom fields: the field ids of a profile)."""

    def plan(self, key: Any, build: Callable[[], Any]) -> Any:
        found = self.plans.get(key)
        if found is None:
            if len(self.plans) >= _PARENTS_CACHED:
                self.plans.clear()
            found = self.plans[key] = build()
        return found

    def segments_below(self, parent: str) -> dict[str, tuple[str, str | None, Any, Any]]:
        """Segment -> (child key, attribute key or None, why left out, why a container there is skipped)."""
        known = self._by_parent.get(parent)
        if known is None:
            if len(self._by_parent) >= _PARENTS_CACHED:
                self._by_parent.clear()
            known = self._by_parent[parent] = {}
        return known


class SelectingPlacer(KeyPlacer):
    """A placer that decides each source key first (through `decide`, which a mapping supplies), places
    kept values under the attribute key decided, and collects the reasons for what it left out."""

    __slots__ = ("decide", "key_cache", "left_out", "prune")

    def __init__(self, decide: Callable[[str], tuple[str | None, Any]], prune: Callable[[str], Any],
                 key_cache: KeyCache, max_key_chars: int, notes: NoteList) -> None:
        super().__init__(max_key_chars, notes)
        self.decide = decide
        self.prune = prune
        """For a container key: None to walk it, or why nothing below it can be kept."""
        self.key_cache = key_cache
        self.left_out: list[Any] = []

    def place(self, key: str, value: str, origin: str) -> None:
        target, why = self.decide(key)
        if target is None:
            self.left_out.append(why)
        else:
            self.place_at(target, value, origin)


_clean_segment = functools.lru_cache(maxsize=8_192)(lambda segment: clean_key_segment(segment))
"""Profiles repeat the same few hundred key segments; caching their cleaning is a large share of the speed."""


def _key_text(key: object) -> str:
    text = scalar_text(key)
    return "null" if text is None else clean_key_segment(text)


def _descend(key: str, node: object, limits: FlattenLimits, placer: KeyPlacer, notes: NoteList,
             budget: _Budget) -> Iterator[tuple[object, object]] | None:
    """The children to walk below `node`, or None when `node` was placed whole (a scalar, a scalar list)."""
    kind = type(node)
    if kind is dict:
        return iter(node.items())  # type: ignore[attr-defined]
    if kind is not list and isinstance(node, Mapping):
        return iter(node.items())
    if isinstance(node, set | frozenset):  # sorted by text: hash seeds must not change the output
        node = sorted(node, key=lambda item: scalar_text(item) or "")
    if isinstance(node, list | tuple):
        if any(_is_container(item) for item in node):
            if len(node) > limits.max_list_items:
                notes.add("list_items", key, f"list has {len(node):,} items; kept the first "
                          f"{limits.max_list_items}")
            return enumerate(node[: limits.max_list_items])
        _place_scalar_list(key, node, limits, placer, notes, budget)
        return None
    text = scalar_text(node)
    if text is not None:
        placer.place(key, clip_value(text, key, limits, notes), key)
    return None


class _Budget:
    """Counts values visited and keys placed; says once, with a note, when the walk must stop."""

    __slots__ = ("_max_keys", "_max_values", "_notes", "_placed", "visited")

    def __init__(self, limits: FlattenLimits, placer: KeyPlacer, notes: NoteList) -> None:
        self._max_values, self._max_keys = limits.max_values, limits.max_keys
        self._placed, self._notes, self.visited = placer.placed, notes, 0

    def spent(self) -> bool:
        self.visited += 1
        if self.visited <= self._max_values and len(self._placed) < self._max_keys:
            return False
        self.stop()
        return True

    def stop(self) -> None:
        if self.visited > self._max_values:
            self._notes.add("values", "", f"stopped after {self._max_values:,} values; the rest of"
                            " the input was ignored")
        else:
            self._notes.add("keys", "", f"stopped at {self._max_keys:,} keys; the rest of the input was ignored")


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
