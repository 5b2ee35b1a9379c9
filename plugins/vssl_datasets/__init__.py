"""vssl built-in datasets: the embedded synthetic "moving shapes" videos."""
