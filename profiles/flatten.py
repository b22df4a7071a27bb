"""Flatten a JSON value into a flat, deterministic `dict[str, str]` with dot-notation keys.

The input is what `json.loads` returns (Slack's payloads are JSON): dicts with string keys, lists, strings,
integers, floats, booleans and None. Anything else (tuples, sets, bytes, Decimal, enums, dates, objects) is
refused with a TypeError rather than guessed at.

Rules (the README's "Profile layer" section shows examples):
- nested objects become dot-joined keys; lists of scalars become one string joined with ", ", so a list
  that shrinks leaves no stale keys; lists holding objects get indexed keys (`key.0`, `key.1`, …) up to a cap;
- empty containers and `None` are dropped; empty strings are kept, because writing "" clears a value
  that an earlier write set;
- booleans become `true`/`false`; numbers become plain decimals (15 significant digits, the precision a
  double guarantees, so float noise such as 0.30000000000000004 disappears; no exponent below 10^21);
- key segments lose control characters and surrounding white space; a key that would collide with one
  already placed gets a `~2`, `~3`, … suffix and a note, never a silent overwrite;
- the walk is iterative and bounded by `FlattenLimits`; whatever a limit cuts off is reported as a note;
- the result's keys are sorted, so the same input always gives the same keys in the same order.
"""

from __future__ import annotations

import decimal
import math
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, NamedTuple, Protocol, TypeAlias

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"

_UNSAFE_KEY_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MAX_NOTES = 50
_LIST_SEPARATOR = ", "
CONTAINERS = (dict, list)  # a tuple: isinstance takes it faster than `dict | list`


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
    """One of: depth, values, keys, list_items, value_clipped, key_cut, collision, unknown_field, notes."""
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


@dataclass(frozen=True, slots=True)
class Flattened:
    """Flat attributes with sorted keys, and the notes about what was cut or renamed on the way."""

    attributes: Mapping[str, str]
    notes: tuple[FlattenNote, ...]


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A source field the mapping left out, and why."""

    source_key: str
    reason: str


class Decision(NamedTuple):
    """What a selection does with one source key: a value there is written under `target` (an attribute key)
    or left out (`target` is the Exclusion saying why); a container there is walked unless `skipped` says why
    nothing below it can be kept. A named tuple: the walk unpacks one per value, faster than three lookups."""

    key: str
    target: str | Exclusion
    skipped: Exclusion | None = None


class Selection(Protocol):
    """Decides, per source key, whether and where a value is written (the mapping is one)."""

    def decide(self, source_key: str) -> Decision: ...

    def decided_below(self, parent_key: str) -> dict[str, Decision]:
        """Decisions already made for the string segments below a key, for the walk to read and add to."""
        ...


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

    def freeze(self) -> tuple[FlattenNote, ...]:
        if self._overflow:
            more = FlattenNote("notes", "", f"{self._overflow:,} more note(s) left out")
            return (*self._items, more)
        return tuple(self._items)


class Placement:
    """Where one walk's values go: the selection's decision, then the value clipped, then the key placed
    (cut when too long, suffixed on collision), each change noted. The one place any value is written."""

    __slots__ = ("_key_notes", "_max_key_chars", "_max_value_chars", "_notes", "_origins", "_selection",
                 "decided_below", "left_out", "placed")

    def __init__(self, notes: NoteList, *, max_key_chars: int, max_value_chars: int = sys.maxsize,
                 selection: Selection | None = None, key_notes: NoteList | None = None) -> None:
        """Without a selection every value is written under its own key; without `max_value_chars`, whole.
        `notes` hears about clipped values, `key_notes` (default: `notes`) about cut and colliding keys."""
        self._notes = notes
        self._max_key_chars = max_key_chars
        self._max_value_chars = max_value_chars
        self._selection = selection
        self._key_notes = notes if key_notes is None else key_notes
        # Bound once: the walk asks for each container it enters.
        self.decided_below: Callable[[str], dict[str, Decision]] = (
            _nothing_decided if selection is None else selection.decided_below
        )
        self._origins: dict[str, str] = {}
        self.placed: dict[str, str] = {}
        self.left_out: list[Exclusion] = []

    def decide(self, source_key: str) -> Decision:
        """The selection's decision for a key: without a selection, write it under its own key."""
        if self._selection is None:
            return Decision(source_key, source_key)
        return self._selection.decide(source_key)

    def decide_below(self, parent_key: str, segment: str, known: dict[str, Decision]) -> Decision:
        """The decision for a child key not in `known` (from `decided_below`), added to it for next time."""
        if not isinstance(segment, str):  # checked here, on a miss: a key that is not a string never hits
            raise TypeError(f"{type(segment).__name__} key under {parent_key!r}: JSON object keys are strings")
        decision = known[segment] = self.decide((parent_key + "." if parent_key else "") + clean_key_segment(segment))
        return decision

    def put(self, decision: Decision, text: str, origin: str | None = None) -> None:
        """Write one value where its decision says (`origin`: its place in the input, for notes)."""
        if isinstance(decision.target, str):
            self.place(decision.target, text, decision.key, origin)
        else:
            self.left_out.append(decision.target)

    def place(self, target: str, text: str, source_key: str, origin: str | None = None) -> None:
        """Clip the value, then place it under `target` (cut when too long, suffixed on collision).

        `origin` names where the value was in the input when its source key does not (custom fields): a later
        collision note names it. Other keys are named by their attribute key, which costs nothing to keep.
        """
        if len(text) > self._max_value_chars:
            self._notes.add("value_clipped", source_key, f"{len(text):,} characters clipped to "
                            f"{self._max_value_chars:,}")
            text = text[: self._max_value_chars]
        if len(target) > self._max_key_chars or target in self.placed:
            target = self._free_key(target, source_key if origin is None else origin)
        self.placed[target] = text
        if origin is not None:
            self._origins[target] = origin

    def in_key_order(self) -> dict[str, str]:
        """The placed values, keys sorted (so the same input gives the same order)."""
        placed = self.placed
        return {key: placed[key] for key in sorted(placed)}  # sorting the keys, not the pairs: 40% less time

    def _free_key(self, key: str, origin: str) -> str:
        if len(key) > self._max_key_chars:
            cut = key[: self._max_key_chars]
            self._key_notes.add("key_cut", cut, f"key cut from {len(key):,} to {self._max_key_chars} characters")
            key = cut
        if key not in self.placed:
            return key
        number = 2
        while True:
            suffix = f"~{number}"
            candidate = key[: self._max_key_chars - len(suffix)] + suffix
            if candidate not in self.placed:
                first = self._origins.get(key, key)
                sources = "two source fields" if first == origin else f"{first!r} and {origin!r}"
                self._key_notes.add("collision", key, f"{sources} both become this key; the later one is"
                                    f" kept as {candidate!r}")
                return candidate
            number += 1


def _nothing_decided(parent_key: str) -> dict[str, Decision]:
    """Without a selection nothing is kept: a fresh table each time."""
    return {}


def clean_key_segment(segment: str) -> str:
    """A key segment without control characters or surrounding white space ("_" if nothing is left)."""
    if segment and segment.isprintable() and not segment[0].isspace() and not segment[-1].isspace():
        return segment
    cleaned = _UNSAFE_KEY_CHARACTERS.sub("", segment).strip()
    return cleaned or "_"


def scalar_text(value: object) -> str | None:
    """The canonical text of a JSON scalar; None for null (dropped). Anything else raises TypeError."""
    return None if value is None else text_of(value)


def text_of(value: object) -> str:
    """The text of a JSON scalar other than null (TypeError for anything else)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _int_text(value)
    if isinstance(value, float):
        return _float_text(value)
    raise TypeError(f"{type(value).__name__} is not a JSON scalar (the profile layer reads what json.loads returns)")


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
    normal = decimal.Decimal(format(number, ".15g")).normalize()  # Decimal: plain notation below 10^21
    return format(normal, "f" if -7 <= normal.adjusted() < 21 else "E")


def flatten(value: JsonValue, limits: FlattenLimits | None = None) -> Flattened:
    """Flatten a JSON value (what `json.loads` returns) into text attributes."""
    limits = limits or FlattenLimits()
    notes = NoteList()
    placement = Placement(notes, max_key_chars=limits.max_key_chars, max_value_chars=limits.max_value_chars)
    walk(value, placement, limits, notes)
    return Flattened(placement.in_key_order(), notes.freeze())


Children: TypeAlias = Iterator[tuple[str, JsonValue]]


def walk(value: JsonValue, placement: Placement, limits: FlattenLimits, notes: NoteList,
         skip: str | None = None) -> None:
    """Flatten `value` into `placement`, depth first in document order.

    The stack holds iterators rather than nodes, so deep input stays off the C stack and a wide node is
    read lazily: the budget stops the walk part-way through a huge object without first listing it.
    Each key is decided before its value is converted, and a container nothing is wanted from is not walked.
    `skip` names one container key to leave out (flatten_user places custom fields itself).
    """
    budget = _Budget(limits, placement, notes)
    children = _children(None, value, placement, limits, notes, budget)
    if children is None:
        return
    # Locals, not attribute lookups, in the loop: it runs for each value of every profile.
    placed, place, leave_out = placement.placed, placement.place, placement.left_out.append
    max_values, max_keys, visited = limits.max_values, limits.max_keys, budget.visited
    # A value places at most one key, so the key count needs counting only once this many values are seen.
    first_check = min(max_values, max_keys)
    # Each entry keeps its container's decisions, asked for once on entering it, not again on each return to it.
    stack: list[tuple[str, Children, int, dict[str, Decision]]] = [("", children, 1, placement.decided_below(""))]
    while stack:
        key, children, depth, known = stack[-1]
        for segment, child in children:
            visited += 1
            if visited > first_check and (visited > max_values or len(placed) >= max_keys):
                budget.visited = visited
                budget.stop()
                return
            if child is None:
                continue
            decision = known.get(segment)
            if decision is None:
                decision = placement.decide_below(key, segment, known)
            child_key, target, skipped = decision
            if not isinstance(child, CONTAINERS):
                if isinstance(target, str):
                    place(target, child if type(child) is str else text_of(child), child_key)
                else:
                    leave_out(target)
                continue
            if child_key == skip:
                continue
            if skipped is not None:
                leave_out(skipped)
                continue
            if depth >= limits.max_depth:
                notes.add("depth", child_key, f"nested deeper than {limits.max_depth} levels; dropped")
                continue
            budget.visited = visited
            grandchildren = _children(decision, child, placement, limits, notes, budget)
            visited = budget.visited
            if grandchildren is not None:
                stack.append((child_key, grandchildren, depth + 1, placement.decided_below(child_key)))
                break
        else:
            stack.pop()


def _children(decision: Decision | None, node: JsonValue, placement: Placement, limits: FlattenLimits,
              notes: NoteList, budget: _Budget) -> Children | None:
    """The children to walk below `node`, or None when `node` was placed whole (a scalar, a scalar list).

    `decision` is None for the root: its key, "value", is needed only when the root is not an object.
    """
    if isinstance(node, dict):
        return iter(node.items())
    decision = decision or placement.decide("value")
    key = decision.key
    if isinstance(node, list):
        if any(isinstance(item, CONTAINERS) for item in node):
            if len(node) > limits.max_list_items:
                notes.add("list_items", key, f"list has {len(node):,} items; kept the first "
                          f"{limits.max_list_items}")
            kept = node[: limits.max_list_items]
            return zip(map(str, range(len(kept))), kept, strict=True)  # indices as text: keys like any other
        _place_scalar_list(decision, node, placement, limits, budget)
        return None
    text = scalar_text(node)
    if text is not None:
        placement.put(decision, text)
    return None


def _place_scalar_list(decision: Decision, items: list[JsonValue], placement: Placement, limits: FlattenLimits,
                       budget: _Budget) -> None:
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
        placement.put(decision, _LIST_SEPARATOR.join(parts))


class _Budget:
    """Counts values visited and keys placed; says, with a note, when the walk must stop."""

    __slots__ = ("_limits", "_notes", "_placed", "visited")

    def __init__(self, limits: FlattenLimits, placement: Placement, notes: NoteList) -> None:
        self._limits, self._placed, self._notes, self.visited = limits, placement.placed, notes, 0

    def spent(self) -> bool:
        """Count one more value; True (with a note) when the walk must stop."""
        self.visited += 1
        if self.visited <= self._limits.max_values and len(self._placed) < self._limits.max_keys:
            return False
        self.stop()
        return True

    def stop(self) -> None:
        if self.visited > self._limits.max_values:
            self._notes.add("values", "", f"stopped after {self._limits.max_values:,} values; the rest of"
                            " the input was ignored")
        else:
            self._notes.add("keys", "", f"stopped at {self._limits.max_keys:,} keys; the rest of the input was"
                            " ignored")
