"""hedger: live beta/delta hedging daemon for crypto portfolios."""

__version__ = "0.1.0"
