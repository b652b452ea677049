"""Operator views: the journal as a readable history, a running daemon at a glance.

Everything here reads (the journal, read-only; a daemon's HTTP port) and renders; nothing
here trades or imports the live daemon.
"""
