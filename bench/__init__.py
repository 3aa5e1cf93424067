"""fastgen benchmarks: each scenario runs fastgen and its anchors in one process and prints
ratios. ``python -m bench rbm [--json] [--quick]``."""
