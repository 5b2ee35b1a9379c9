"""vssl built-in backbones: video ViT (VideoMAE naming)."""
