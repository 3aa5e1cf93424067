"""The compiled backends: ``cpu`` (fastgen._C with SciPy's BLAS) and ``cuda`` (NVRTC through CuPy).

Only ``fastgen.ops`` imports these modules (tests/test_layering.py enforces it); everything above
ops reaches a kernel through an op.
"""
