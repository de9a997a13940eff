"""Transports: each turns its own request into the core's neutral one and the reply
back. They hold no QStash rules."""
