"""`python app.py push --email ADDRESS PATH`: write a Slack user object's attributes to that Genesys user's
live participants now.

Exit status, as `preview` for the input: 0 written (or nothing live to write to), 1 the attributes are not
voice-safe or Genesys rejected them, 2 the input is unusable; and 3 when Genesys cannot be used (credentials,
permissions, outage), with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

from cli.preview import EXIT_OK, EXIT_PROBLEMS, EXIT_UNUSABLE, UnusableInput, load_desired, problem_lines
from genesys import AttributesRejected, ConversationGone, GenesysClient, GenesysError
from sync import AttributeRules

EXIT_GENESYS = 3


@dataclass(frozen=True, slots=True)
class PushRequest:
    """What to push, and to whom."""

    path: str
    email: str
    team_profile: str | None = None


def push(request: PushRequest, rules: AttributeRules, client: GenesysClient, *, stdin: IO[bytes], out: IO[str],
         err: IO[str]) -> int:
    """Flatten, validate and write; returns the exit status."""
    if "@" not in request.email.strip():
        print(f"push: --email {request.email!r} is not an e-mail address", file=err)
        return EXIT_UNUSABLE
    try:
        desired = load_desired(request.path, request.team_profile, rules, stdin)
    except UnusableInput as error:
        print(f"push: {error}", file=err)
        return EXIT_UNUSABLE
    for line in problem_lines(desired):
        print(line, file=err)
    if not desired.ok:
        print("push: nothing written: the attributes are not voice-safe (see above)", file=err)
        return EXIT_PROBLEMS
    attributes = desired.report.sendable()
    try:
        user = client.find_user_by_email(request.email)
        if user is None:
            print(f"push: Genesys has no user with the e-mail {request.email}; nothing written", file=err)
            return EXIT_UNUSABLE
        live = client.live_participants(user.id)
        if not live:
            print(f"{request.email} (Genesys user {user.id}) has no live conversation; nothing written. "
                  "The running app writes to the next one.", file=out)
            return EXIT_OK
        print(f"Writing {len(attributes.attributes)} attribute(s) from Slack user {desired.user.display} to "
              f"{request.email} (Genesys user {user.id}):", file=out)
        status = EXIT_OK
        for participant in live:
            where = (f"conversation {participant.conversation_id} participant {participant.participant_id} "
                     f"({participant.media_type})")
            try:
                result = client.write_attributes(participant.conversation_id, participant.participant_id, attributes)
            except ConversationGone:
                print(f"  {where}: ended before the write; skipped", file=out)
                continue
            except AttributesRejected as error:
                print(f"  {where}: REJECTED: {error}", file=out)
                status = EXIT_PROBLEMS
                continue
            print(f"  {where}: written (contextId {result.context_id or 'none given'})", file=out)
        return status
    except GenesysError as error:
        print(f"push: {error}", file=err)
        return EXIT_GENESYS
