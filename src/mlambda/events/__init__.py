"""Asynchronous invocation: the durable queue and what drains it."""
