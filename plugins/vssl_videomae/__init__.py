"""vssl plugin: VideoMAE masked video pretraining."""
