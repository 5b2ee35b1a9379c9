"""vssl plugin: SIGMA, Sinkhorn-guided masked video modeling (ECCV 2024)."""
