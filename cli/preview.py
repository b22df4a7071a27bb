"""`python app.py preview`: show the participant attributes a Slack user object would become.

Exit status: 0 the attributes are voice-safe, 1 validation found problems, 2 the input is unusable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from genesys import CONTROL_CHARACTERS
from profiles import Exclusion, FieldLabels, NotAUserObject, TeamProfileError, find_user
from sync import AttributeRules, DesiredAttributes, SyncTarget, desired_attributes

EXIT_OK, EXIT_PROBLEMS, EXIT_UNUSABLE = 0, 1, 2
MAX_INPUT_BYTES = 16 * 1024 * 1024
"""Far above any Slack user object (a few KB); bounds memory before parsing."""
_KEY_COLUMN_MAX = 40
LEFT_OUT_NAMED = 8
"""Left-out fields named without --verbose: enough to spot a missing one, short enough to keep the table in view."""


TEAM_PROFILE_ROLE = "team profile"
"""How errors name the --team-profile input, so a problem with it is never mistaken for one with PATH."""


class UnusableInput(Exception):
    """The input cannot be previewed; the message is one line that says what and where."""


@dataclass(frozen=True, slots=True)
class PreviewRequest:
    """What to preview and how to show it."""

    path: str
    team_profile: str | None = None
    as_json: bool = False
    verbose: bool = False
    """List every field the mapping left out, with why, instead of the first few."""


def input_name(path: str, role: str = "") -> str:
    """How errors name an input: the path (or "standard input"), after its role when it is not the main input."""
    if not role:
        return "standard input" if path == "-" else path
    return f"{role} on standard input" if path == "-" else f"{role} file {path}"


def read_json(path: str, stdin: IO[bytes], *, role: str = "", expected: str = "a JSON Slack user object or event"
              ) -> Any:
    """Parse a JSON document from a file or `-` (standard input), with a size bound and one-line errors; `role`
    names a secondary input in them ("team profile file …"), `expected` says what an empty one should have held."""
    name = input_name(path, role)
    try:
        if path == "-":
            raw = stdin.read(MAX_INPUT_BYTES + 1)
        else:
            with Path(path).open("rb") as handle:
                raw = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as error:
        raise UnusableInput(f"{name}: cannot be read ({error.strerror or error})") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise UnusableInput(f"{name}: larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB; a Slack user object is a "
                            "few KB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnusableInput(f"{name}: not UTF-8 text (byte {error.start})") from None
    if not text.strip():
        raise UnusableInput(f"{name}: empty; expected {expected}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UnusableInput(f"{name}: not JSON: {error.msg} at line {error.lineno}, column {error.colno}") from None
    except RecursionError:
        raise UnusableInput(f"{name}: JSON nested too deeply to read; a Slack user object is 4 levels deep") from None


def load_desired(path: str, team_profile: str | None, rules: AttributeRules, stdin: IO[bytes]) -> DesiredAttributes:
    """Read a Slack user object (and field definitions) and compute its attributes; UnusableInput if it can't."""
    labels = FieldLabels.empty()
    if team_profile is not None:
        if team_profile == "-" and path == "-":
            raise UnusableInput("--team-profile - and PATH - both ask for standard input; give one of them as a file")
        try:
            labels = FieldLabels.from_team_profile(read_json(team_profile, stdin, role=TEAM_PROFILE_ROLE,
                                                               expected="a team.profile.get response"))
        except TeamProfileError as error:
            raise UnusableInput(f"{input_name(team_profile, TEAM_PROFILE_ROLE)}: not a team.profile.get response: "
                                f"{error}") from None
    document = read_json(path, stdin)
    try:
        user = find_user(document)
    except NotAUserObject as error:
        raise UnusableInput(f"{input_name(path)}: {error}") from None
    return desired_attributes(user, labels, rules)


def preview(request: PreviewRequest, rules: AttributeRules, *, stdin: IO[bytes], out: IO[str], err: IO[str],
            target: SyncTarget | None = None) -> int:
    """Run the preview; returns the exit status. `target` (SYNC_TARGET) says where the attributes would go."""
    target = target or SyncTarget()
    try:
        desired = load_desired(request.path, request.team_profile, rules, stdin)
    except UnusableInput as error:
        print(f"preview: {error}", file=err)
        return EXIT_UNUSABLE
    if request.as_json:
        json.dump(dict(desired.report.attributes), out, ensure_ascii=False, indent=2)
        out.write("\n")
        for line in problem_lines(desired):
            print(line, file=err)
    else:
        out.write(render_table(desired, rules, labels_given=request.team_profile is not None,
                               verbose=request.verbose, target=target))
    return EXIT_OK if desired.ok else EXIT_PROBLEMS


def render_table(desired: DesiredAttributes, rules: AttributeRules, *, labels_given: bool,
                 verbose: bool = False, target: SyncTarget | None = None) -> str:
    """The human-readable preview."""
    target = target or SyncTarget()
    report = desired.report
    attributes = report.attributes
    lines = [f"Slack user {desired.user.display}, from a {desired.user.source}"]
    lines.append(f"{len(attributes)} attribute(s), {report.body_bytes:,} bytes as a request body"
                 f" (limit {rules.voice_safe.max_body_bytes:,})")
    lines.append("")
    width = min(max((len(key) for key in attributes), default=0), _KEY_COLUMN_MAX)
    for key, value in attributes.items():
        lines.append(f"  {_printable(key).ljust(width)}  {_printable(value) if value else '(empty)'}")
    if not attributes:
        lines.append("  (none: the mapping left every field out)")
    lines.append("")
    excluded = desired.mapped.excluded
    sensitive = [e.source_key for e in excluded if e.reason.startswith("sensitive")]
    if excluded:
        detail = f" ({len(sensitive)} sensitive, left out until opted in: {', '.join(sensitive)})" if sensitive else ""
        lines.append(f"Left out by the mapping: {len(excluded)} field(s){detail}")
        lines.extend(left_out_lines(excluded, verbose=verbose))
    if desired.optional:
        lines.append(f"Each person may keep these to themself on the app's Home tab (person_optional): "
                     f"{', '.join(_printable(key) for key in desired.optional)}")
    has_custom = any(key.startswith("custom.") for key in (e.source_key for e in excluded)) or any(
        key.startswith(rules.mapping.prefix + "custom.") for key in attributes
    )
    if has_custom and not labels_given and rules.mapping.custom_fields == "label":
        lines.append("Custom fields are keyed by field id: pass --team-profile FILE (a team.profile.get response)"
                     " to key them by label")
    lines.extend(problem_lines(desired))
    if report.ok:
        lines.append("Voice-safe check: passed")
    lines.extend(target_lines(attributes, rules, target))
    return "\n".join(lines) + "\n"


def target_lines(attributes: Mapping[str, str], rules: AttributeRules, target: SyncTarget) -> list[str]:
    """Where the attributes would be written (SYNC_TARGET), with the keys the customer's participant gets."""
    lines = [f"Written to: {target.where()} (SYNC_TARGET={target.name})"]
    if target.customer and attributes:
        keys = [target.customer_key(key, rules.mapping.prefix) for key in attributes]
        shown = ", ".join(_printable(key) for key in keys[:LEFT_OUT_NAMED])
        more = f" and {len(keys) - LEFT_OUT_NAMED} more" if len(keys) > LEFT_OUT_NAMED else ""
        lines.append(f"  keys on the customer's participant: {shown}{more}")
        too_long = [key for key in keys if len(key) > rules.voice_safe.max_key_chars]
        if too_long:
            lines.append(f"  {len(too_long)} of them are longer than {rules.voice_safe.max_key_chars} characters "
                         "([voice_safe] max_key_chars): the customer's participant is not written; shorten "
                         "CUSTOMER_KEY_PREFIX or the keys")
    return lines


def left_out_lines(excluded: Sequence[Exclusion], *, verbose: bool) -> list[str]:
    """The left-out fields: each with its reason (verbose), else the first few on one line and how many more."""
    if verbose:
        width = min(max(len(e.source_key) for e in excluded), _KEY_COLUMN_MAX)
        return [f"  {_printable(e.source_key).ljust(width)}  {e.reason}" for e in excluded]
    named = ", ".join(_printable(e.source_key) for e in excluded[:LEFT_OUT_NAMED])
    more = len(excluded) - LEFT_OUT_NAMED
    return [f"  {named}" + (f" and {more} more; --verbose lists all" if more > 0 else "")]


def problem_lines(desired: DesiredAttributes) -> list[str]:
    lines = [f"Note: {note}" for note in desired.notes]
    lines.extend(f"Truncated: {cut}" for cut in desired.report.truncations)
    if desired.report.problems:
        lines.append(f"Voice-safe check: {len(desired.report.problems)} problem(s); nothing would be written")
        lines.extend(f"  - {problem} [{problem.rule}]" for problem in desired.report.problems)
    return lines


def _printable(text: str) -> str:
    return CONTROL_CHARACTERS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def stdin_bytes() -> IO[bytes]:
    return sys.stdin.buffer
