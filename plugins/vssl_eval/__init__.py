"""vssl plugin: downstream evaluation (fine-tuning, linear probing, kNN) with multi-view testing."""
