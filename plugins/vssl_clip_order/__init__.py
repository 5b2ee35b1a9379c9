"""vssl plugin: video clip order prediction (VCOP, Xu et al., CVPR 2019)."""
