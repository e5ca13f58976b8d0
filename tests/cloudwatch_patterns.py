"""CloudWatch Logs filter-pattern terms for unstructured log events, as the metric filters use them: every
term must occur in the event (case-sensitive; double quotes keep spaces and punctuation in one term), a
`?term` group matches if any of its terms occurs, a `-term` must not occur. This is our reading of AWS's
"Filter pattern syntax for metric filters" (unstructured log events), not CloudWatch itself: the tests
check the patterns against real PostgreSQL log lines with it."""

from __future__ import annotations

import shlex


def matches(pattern: str, event: str) -> bool:
    terms = shlex.split(pattern, posix=True)
    required = [t for t in terms if not t.startswith(("?", "-"))]
    optional = [t[1:] for t in terms if t.startswith("?")]
    excluded = [t[1:] for t in terms if t.startswith("-")]
    return (all(t in event for t in required) and (not optional or any(t in event for t in optional))
            and not any(t in event for t in excluded))
