"""The functional core: pure, synchronous, deterministic; no I/O and no clock reads."""
