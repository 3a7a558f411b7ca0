"""Word-level difference of an augmented row and its parent, as HTML for the report.

Texts are split into words, punctuation runs and spaces, and matched with difflib's
SequenceMatcher; words only in the parent are wrapped in <del>, words only in the child in <ins>.
Every piece of text is HTML-escaped. Long texts are cut to a window that starts shortly before
the first change, so the change is visible.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from flows.report_html import e

_TOKEN = re.compile(r"\w+|[^\w\s]+|\s+")
WINDOW = 420  # characters shown per side
LEAD = 120  # characters kept before the first change


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text or "")


def _render(segments: list[tuple[str, bool]], tag: str) -> str:
    """Segments (text, changed) as HTML, cut to WINDOW characters starting LEAD before the first change."""
    starts, position = [], 0
    for text, _ in segments:
        starts.append(position)
        position += len(text)
    first = next((start for start, (_, changed) in zip(starts, segments) if changed), 0)
    begin = max(0, first - LEAD)
    parts, shown = ["…" if begin else ""], 0
    for start, (text, changed) in zip(starts, segments):
        if start + len(text) <= begin:
            continue
        piece = text if start >= begin else re.sub(r"^\w+", "", text[begin - start:])  # no half word at the cut
        cut = len(piece) > WINDOW - shown
        if cut:
            piece = re.sub(r"\w+$", "", piece[: WINDOW - shown])
        shown += len(piece)
        parts.append(f"<{tag}>{e(piece)}</{tag}>" if changed and piece.strip() else e(piece))
        if cut:
            parts.append("…")
            break
    return "".join(parts)


def word_diff(parent: str, child: str) -> tuple[str, str]:
    """HTML of `parent` with the words the child lost in <del>, and of `child` with its new words in <ins>."""
    old, new = _tokens(parent), _tokens(child)
    matcher = SequenceMatcher(None, old, new, autojunk=False)
    old_segments, new_segments = [], []
    for operation, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        changed = operation != "equal"
        if a_end > a_start:
            old_segments.append(("".join(old[a_start:a_end]), changed))
        if b_end > b_start:
            new_segments.append(("".join(new[b_start:b_end]), changed))
    return _render(old_segments, "del"), _render(new_segments, "ins")
