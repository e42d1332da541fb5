"""Small modal screens: a reason, a line of text, a choice, a text to read."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line; Enter returns it, Escape cancels (returns None)."""

    DEFAULT_CSS = """
    TextPrompt { align: center middle; }
    TextPrompt > Vertical { width: 70; max-width: 95%; height: auto; border: thick $primary;
                            background: $surface; padding: 0 1; }
    TextPrompt Label { margin-bottom: 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, placeholder: str = "", required: bool = True) -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder
        self.required = required

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Input(placeholder=self.placeholder, id="prompt-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        if self.required and not value:
            self.notify("An answer is needed (Escape cancels).", severity="warning")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoicePrompt(ModalScreen[str | None]):
    """Pick one of a few options; Enter returns its id, Escape cancels (None)."""

    DEFAULT_CSS = """
    ChoicePrompt { align: center middle; }
    ChoicePrompt > Vertical { width: 70; max-width: 95%; height: auto; max-height: 90%;
                              border: thick $primary; background: $surface; padding: 0 1; }
    ChoicePrompt Label { margin-bottom: 1; }
    ChoicePrompt OptionList { height: auto; max-height: 12; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, options: list[tuple[str, str]]) -> None:
        super().__init__()
        self.question = question
        self.options = options

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield OptionList(*[Option(label, id=key) for key, label in self.options],
                             id="choices")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextViewer(ModalScreen[None]):
    """A longer text to read (a timeline event in full); Escape or Enter closes."""

    DEFAULT_CSS = """
    TextViewer { align: center middle; }
    TextViewer > VerticalScroll { width: 90%; height: auto; max-height: 90%;
                                  border: thick $primary; background: $surface;
                                  padding: 0 1; }
    TextViewer #viewer-title { text-style: bold; margin-bottom: 1; }
    """
    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self.title_text, id="viewer-title", markup=False)
            yield Static(self.text, id="viewer-text", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
