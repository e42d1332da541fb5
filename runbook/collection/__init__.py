"""Collection: the use case above the engine.

`collect` plans and records a collection (which incident, which of its hosts,
which collectors); `worker` runs one in a child process for the app. The
engine itself (`runbook.engine`) fans collectors out over transports and knows
nothing of incidents. Nothing is re-exported here, so that the app can import
the worker's launcher without loading the engine.
"""
