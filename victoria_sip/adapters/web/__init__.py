"""The web console: an HTTP API (and, to come, its pages) behind a login."""
