"""Triton kernel bodies (``@triton.jit`` only). Imported lazily by :mod:`mmlop.ops`; the top-level
``kernels/`` folder of the repository is a symlink to this package so the files ship inside the wheel."""
