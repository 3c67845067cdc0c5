"""Build the ringpipe extension for `pip install --no-build-isolation ./python`.

The extension is the binding (ringpipe/_ringpipe.c) compiled together with
libringpipe's own sources (../src/*.c, ../include), so the installed
package needs no separate libringpipe.  Metadata is in pyproject.toml.
"""

import glob
import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
os.chdir(HERE)      # setuptools wants source paths relative to setup.py
LIB_SOURCES = sorted(os.path.relpath(p) for p in
                     glob.glob(os.path.join(ROOT, 'src', '*.c')))
if not LIB_SOURCES:
    raise SystemExit('ringpipe: libringpipe sources not found in %s/src; '
                     'build from the ringpipe repository' % ROOT)

ext = Extension(
    'ringpipe._ringpipe',
    sources=['ringpipe/_ringpipe.c'] + LIB_SOURCES,
    include_dirs=[os.path.join(ROOT, 'include'), os.path.join(ROOT, 'src')],
    extra_compile_args=['-std=gnu11', '-fvisibility=hidden'],
    libraries=['pthread'],
)

setup(ext_modules=[ext])
