"""The Textual front end: screens render state, widgets show it, intents go to the core."""
