"""The paper venue: the simulator and matching engine served over Deribit's API v2."""
