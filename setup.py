"""The one thing pyproject.toml cannot say: Shoal's optional C speedups (src/shoal/_speedups.c).

`optional=True`: where it cannot be compiled (no C compiler, no Python headers), the install goes on without
it and Shoal runs its Python twins instead (shoal/speedups.py). `-ffp-contract=off` keeps the compiler from
fusing a multiply and an add into one instruction with one rounding (as GCC does on ARM by default): the C
arithmetic must round as Python's does, so that both write the same bytes.
"""

import sys

from setuptools import Extension, setup

arguments = [] if sys.platform == "win32" else ["-ffp-contract=off"]
speedups = Extension("shoal._speedups", sources=["src/shoal/_speedups.c"], extra_compile_args=arguments, optional=True)
setup(ext_modules=[speedups])
