"""The compiled backends: ``cpu`` (fastgen._C with SciPy's BLAS) and ``cuda`` (NVRTC through CuPy).

The CUDA side is split by concern and by op: ``cuda_runtime`` (availability, compile and cache,
params packing, launch), ``graphs`` (CUDA-graph capture and replay) and one ``cuda_<op>`` launcher
module per kernels/<op>.cu; ``cuda`` and ``cuda_vae`` gather them under the names the ops call.

Only ``fastgen.ops`` imports these modules (tests/test_layering.py enforces it); everything above
ops reaches a kernel through an op.
"""
