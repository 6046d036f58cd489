"""The events app's pages: `sources` (Settings → Sources and the public library/settings files
tracked sites load) and `debugger` (the event debugger and dead letters)."""
