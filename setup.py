"""The one thing pyproject.toml cannot say: Shoal's optional C speedups (src/shoal/_speedups.c).

`optional=True`: where it cannot be compiled (no C compiler, no Python headers), the install goes on without
it and Shoal runs its Python twins instead (shoal/speedups.py).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("shoal._speedups", sources=["src/shoal/_speedups.c"], optional=True)])
