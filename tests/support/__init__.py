"""Real servers on 127.0.0.1 and helpers for the send tests."""
