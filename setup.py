"""Optional C accelerators: every ``src/kapacity/_native/*.c`` becomes ``kapacity._native.<name>``.

Each is optional: when a compiler or the Python headers are missing the build goes on and
kapacity runs on the pure-Python implementation of the same function (see
``kapacity._native``). ``KAPACITY_PURE=1`` at install time skips them on purpose.
"""

import os
from pathlib import Path

from setuptools import Extension, setup

sources = sorted(Path("src/kapacity/_native").glob("*.c"))
extensions = [] if os.environ.get("KAPACITY_PURE") == "1" else [
    Extension(f"kapacity._native.{src.stem}", [str(src)], optional=True, extra_compile_args=["-O2"])
    for src in sources
]
setup(ext_modules=extensions)
