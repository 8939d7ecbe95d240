from setuptools import setup

# The C core is built by cffi from csrc/ (see lazybench/_build_core.py).
setup(cffi_modules=["lazybench/_build_core.py:ffibuilder"])
