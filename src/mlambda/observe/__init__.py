"""Logs, metrics and the REPORT line."""
