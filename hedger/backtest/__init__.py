"""Backtests: the live core (betas -> exposure -> policy -> guards) driven by a simulated or
recorded market on a simulated clock, with effectiveness metrics, sweeps and plots.

- ``tape``: what the core reads, one row per conflated bar; ``layout``: the book it is laid
  out for (declared holdings + one hedge row per factor).
- ``sim_tape`` (``hedger.sim`` by scenario and seed) and ``replay`` (a ``hedger record``
  file through the live feed's ``handle_frame``): where a tape comes from.
- ``run``: the core over a tape with simulated market-order fills; ``metrics``, ``sweep``,
  ``study`` and ``derman_kamal``: pure.
- ``presets`` (the ``options-book`` portfolio), ``recording``/``record`` (the file format and
  the recorder), ``report``/``plots``/``cli``: the shell.

Sweep paths are the config's YAML keys, dotted (``beta.half_life``, ``factors.0.band.kind``);
``hedge.band.X`` and ``hedge.target.X`` address the first factor's band and target.
"""
