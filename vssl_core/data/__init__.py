"""The data path from a dataset's videos to batches of clips in the shape an objective asked for."""
