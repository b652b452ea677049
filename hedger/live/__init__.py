"""The live daemon: the engine loop that drives the core's step, its venue links,
operator control, start-up checks and the assembly of everything ``hedger run`` owns."""
