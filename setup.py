"""Build the Cython kernels in ``ext/`` as ``electrofem._ext.*`` modules.

No ``-march=native``: the wheels must run on any x86-64 machine.
"""

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILE_ARGS = ["-O3"]

extensions = [
    Extension(
        f"electrofem._{name}",
        [f"ext/{name}.pyx"],
        include_dirs=[np.get_include()],
        extra_compile_args=COMPILE_ARGS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for name in ("packing", "postprocess", "vof")
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )
)
