"""Bolt listeners, grouped by kind; each group has a `register(app, …)`. Listeners parse, answer fast and hand
work to the engine; they never talk to Genesys themselves. `handlers.app` builds the Bolt app from the settings and
registers every group."""
