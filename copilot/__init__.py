"""Mandarin service-call copilot."""
