"""Real ccxt clients against loopback servers that answer in each venue's documented formats.

``server.LoopbackVenue`` records every request (method, path, query in order, body,
headers) and answers from a venue module's routes; each venue module (``deribit``,
``binanceusdm``, ``bybit``, ``okx``, ``hyperliquid``) holds that venue's documented
answers and a little order state, enough for a hedge and its lookup.
"""
