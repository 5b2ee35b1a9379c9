"""vssl plugin: playback-speed prediction (a pretext task vssl itself does not ship)."""
