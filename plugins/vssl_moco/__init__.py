"""vssl plugin: video MoCo v2 (momentum contrast on clips)."""
