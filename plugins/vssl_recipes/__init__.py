"""vssl plugin: vssl's own recipes, found by name from any folder.

The runnable CPU recipes (``sigma.yaml``, ``rotation.yaml``...), the shared fragments
(``base/``), the evaluation settings (``eval/``, ``severe/``), the monitor recipes and the zoo:
``vssl train sigma.yaml``, ``vssl eval eval/synthetic_knn.yaml``, ``defaults: [base/synthetic.yaml]``
in a recipe of your own, anywhere. In a checkout ``recipes/`` (this package's ``recipes`` links
to the checkout's top-level folder, so they are edited in one place); a wheel carries a copy.
"""
