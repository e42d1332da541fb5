"""The Textual front end: screens render state, widgets show it, intents go to the core."""

import os

# Textual redraws at most 60 times a second, and a change that alters a widget's
# height (the step view, on every j/k) takes two or three layout passes, each
# waiting for the next frame: ~40 ms before the screen settles. At 120 the same
# keys settle in ~25 ms; redraws still only happen when something changed. Read
# by Textual when it is first imported, which this package comes before.
os.environ.setdefault("TEXTUAL_FPS", "120")
