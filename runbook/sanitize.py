"""Make untrusted remote output safe to put on a terminal.

Remote hosts send whatever bytes they like. Passed to a widget as they are, an
OSC 52 sequence writes the operator's clipboard, OSC 0 retitles the window, CSI
sequences move the cursor and repaint what is already on screen (Textual's `Log`
forwards them to the terminal untouched). Every piece of remote text goes
through `clean_line` (one line) or `clean_text` / `clean_bytes` (many lines)
before it reaches a widget.

What comes out contains no C0 control except `\\n` (multi-line functions only),
no DEL, no ESC, and no C1 control (U+0080-U+009F): the guarantee holds whatever
the input, because after sequences are removed as whole units every remaining
control character is dropped one by one.

Decisions, and why:

- Sequences are removed as a unit (introducer, parameters, payload and
  terminator), so `ESC ] 0 ; evil BEL` leaves nothing behind rather than
  `0;evil`. Both the 7-bit (`ESC [`) and 8-bit (U+009B) introducers count.
- A string sequence (OSC, DCS, SOS, PM, APC) ends at ST (`ESC \\` or U+009C),
  BEL, CAN or SUB, and at the latest at the end of the line: a missing
  terminator hides at most the rest of that one line, never the rest of the
  capture.
- A lone CR is dropped rather than honoured. A terminal would let the text
  after a CR overwrite the text before it, so `rm -rf /\\rls -l` would display
  as `ls -l`; dropping it keeps every character the host sent visible, which
  is what evidence is for. Progress bars redrawn with CR therefore show as one
  long line. A CR before LF (CRLF line endings) simply disappears.
- Tabs are expanded to spaces (stops every 8 columns, counted in characters
  after cleaning), because a tab's width is up to the terminal and would
  misalign whatever a widget draws after it.
- Invalid UTF-8 decodes to U+FFFD. In raw bytes, 0x80-0x9F are never valid
  UTF-8 on their own, so 8-bit controls arrive as U+FFFD; the C1 rules above
  catch them when they come UTF-8 encoded (C2 80 - C2 9F).
"""

from __future__ import annotations

import re

TAB_SIZE = 8

# A string sequence's payload runs to its terminator: ST (ESC \ or U+009C), BEL,
# CAN or SUB (both abort a sequence in xterm and VT terminals), or end of text.
_STRING_BODY = r"[^\x07\x18\x1a\x1b\x9c]*(?:\x1b\\|[\x07\x18\x1a\x9c])?"

_SEQUENCE = re.compile(
    # CSI: ESC [ or U+009B, parameter bytes, intermediate bytes, one final byte.
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    # OSC, DCS, SOS, PM, APC, 7-bit or 8-bit introducer, then a string.
    r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])" + _STRING_BODY +
    # Any other escape sequence (ESC 7, ESC c, ESC ( B, ESC # 8 ...) or a lone ESC.
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)

# Whatever control is left after sequences are gone: C0 (tab handled apart),
# DEL and C1. Newlines are split off before this runs.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")

# Fast paths: most lines of most captures hold none of these.
_SUSPECT = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SUSPECT_BUT_LF = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def clean_line(text: str) -> str:
    """One line of remote text, safe to display. Expects a single line: a trailing
    LF or CRLF is removed, and any other line break inside it is dropped like any
    control character (use `clean_text` for text with several lines)."""
    if not _SUSPECT.search(text):
        return text
    if text.endswith("\n"):
        text = text[:-1]
    text = _CONTROL.sub("", _SEQUENCE.sub("", text))
    return text.expandtabs(TAB_SIZE) if "\t" in text else text


def clean_text(text: str) -> str:
    """Many lines of remote text, safe to display; line breaks (LF) are kept,
    each line is cleaned on its own, so no sequence spans two lines."""
    if not _SUSPECT_BUT_LF.search(text):
        return text
    return "\n".join(clean_line(line) for line in text.split("\n"))


def clean_bytes(data: bytes) -> str:
    """Raw captured bytes, decoded as UTF-8 with replacement, then `clean_text`."""
    return clean_text(data.decode("utf-8", errors="replace"))
