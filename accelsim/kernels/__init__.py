"""Numba kernels: the only place accelsim imports numba."""
