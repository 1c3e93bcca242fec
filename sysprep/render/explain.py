"""`sysprep explain`: the causes ranked, each with its evidence quoted and its fix."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from sysprep.explain import COUNTED
from sysprep.render import SCHEMA_VERSION
from sysprep.render import esc
from sysprep.render.layout import console
from sysprep.render.layout import say

if TYPE_CHECKING:
    from sysprep.explain import Explanation


def explain_document(explanation: Explanation) -> dict[str, Any]:
    """The `explain --json` document (sysprep/schemas/explain.schema.json)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "causes": [
            {
                "limit": cause.limit,
                "weight": cause.weight,
                "evidence": list(cause.evidence),
                "fix": cause.fix._asdict() if cause.fix else None,
            }
            for cause in explanation.causes
        ],
        "notes": list(explanation.notes),
        "history": list(explanation.history),
    }


def print_explanation(explanation: Explanation) -> None:
    """The most likely cause first; each with what says so and how to lift it."""
    out = console()
    if not explanation.causes:
        say(out, "no limit shows a refusal or is used up now: nothing explains an EAGAIN here")
    for rank, cause in enumerate(explanation.causes, start=1):
        strength = "the kernel counted refusals" if cause.weight == COUNTED else "used up now"
        say(out, esc(f"{rank}. {cause.limit} ({strength})"))
        for line in cause.evidence:
            say(out, esc(line), 3)
        if cause.fix is not None:
            say(out, esc(f"fix: {cause.fix.now}"), 3)
    for line in explanation.history:
        say(out, esc(f"service: {line}"))
    for note in explanation.notes:
        say(out, esc(f"note: {note}"))
