"""Video decoder plugins: PyAV (default), frame folders, and the optional torchcodec and decord."""
