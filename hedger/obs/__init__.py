"""Observability: logging, metrics, HTTP."""
