"""vssl plugin: tubelet-contrastive learning (Thoker, Doughty, Snoek, ICCV 2023)."""
