"""Detection: which tests fail now that passed within the last N tracked commits. Pure.

Works on a first-parent window of commit shas (newest first, HEAD first) and the outcomes
observed on each. Only `passed` is good and only `failed`/`error` are bad; anything else
(skipped, xfail, not run) says nothing and is stepped over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .model import Outcome, Regression


def detect(
    window: list[str],
    positions: Mapping[str, int],
    observations: Mapping[str, Mapping[str, Iterable[Outcome]]],
    failing: Mapping[str, tuple[Outcome, str | None, str | None]],
) -> list[Regression]:
    """Regressions among `failing` tests (nodeid -> outcome, signature, message at HEAD).

    `window` is HEAD then older tracked commits; `positions` gives each commit's distance from
    HEAD along the first-parent line, so the number of candidates counts untracked commits too.
    A commit where the test both passed and failed counts as a pass: the test could pass there.
    """
    found = []
    for nodeid, (outcome, sig, message) in sorted(failing.items()):
        per_commit = observations.get(nodeid, {})
        first_bad = window[0]
        for sha in window[1:]:
            outcomes = set(per_commit.get(sha, ()))
            if any(o.is_good for o in outcomes):
                found.append(
                    Regression(
                        nodeid=nodeid,
                        last_good=sha,
                        first_bad=first_bad,
                        candidates=positions[sha] - positions[first_bad],
                        outcome=outcome,
                        signature=sig,
                        message=message,
                    )
                )
                break
            if any(o.is_bad for o in outcomes):
                first_bad = sha
    return found
