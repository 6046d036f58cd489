"""Segment condition kinds over other apps' data, beside the compiler's built-in ones.

Each entry of CONDITION_KINDS maps a leaf's ``type`` to a `compiler.ConditionKind`: how to parse
the leaf (no database reads), compile it to a Q over Contact, describe it, and what triggers it.
Adding a kind is a function or two here (or in a module of their own) and one line in the dict.
The shared helpers: `compiler.DefinitionError`, `compiler._filter` (operator/value parsing as the
built-in kinds do), `compiler.Context` (today, the realtime scope).
"""

from segments.definition.compiler import ConditionKind
from segments.definition.score_kind import SCORE_KIND

CONDITION_KINDS: dict[str, ConditionKind] = {
    "score": SCORE_KIND,
}
