"""The application: what Victoria does with a call, on the event loop."""
