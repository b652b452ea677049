"""Order execution: brokers (ccxt) and the executor that never sends an intent twice."""
