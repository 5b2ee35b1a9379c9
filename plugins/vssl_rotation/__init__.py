"""vssl plugin: 3D rotation prediction (3DRotNet, Jing & Tian 2018)."""
