"""Build the compiled core of sipsimple.

Compiler and linker flags come from pkg-config. A missing library stops the
build with the name of the Debian package that provides it.
"""

import os
import shlex
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# pkg-config name -> Debian package that ships its .pc file and headers
PKG_CONFIG_DEPS = {
    "_core": {"sofia-sip-ua": "libsofia-sip-ua-dev"},
    "_media": {
        "libsrtp2": "libsrtp2-dev",
        "opus": "libopus-dev",
        "spandsp": "libspandsp-dev",
        "speexdsp": "libspeexdsp-dev",
        "portaudio-2.0": "portaudio19-dev",
    },
}
# libraries without a .pc file: (header, library, Debian package)
PLAIN_DEPS = {"_media": [("gsm.h", "gsm", "libgsm1-dev")]}

HERE = os.path.dirname(os.path.abspath(__file__))


class MissingLibrary(SystemExit):
    pass


def pkg_config(name: str, debian: str) -> list[str]:
    try:
        out = subprocess.run(
            ["pkg-config", "--cflags", "--libs", name], check=True, capture_output=True, text=True
        ).stdout
    except FileNotFoundError:
        raise MissingLibrary(
            "sipsimple build: pkg-config is missing; install the Debian package 'pkg-config'"
        ) from None
    except subprocess.CalledProcessError:
        raise MissingLibrary(
            f"sipsimple build: library '{name}' not found by pkg-config; "
            f"install the Debian package '{debian}' (apt-get install {debian}) "
            f"or run 'make install-deps'"
        ) from None
    return shlex.split(out)


def header_exists(header: str) -> bool:
    return any(os.path.exists(os.path.join(d, header)) for d in ("/usr/include", "/usr/local/include"))


def extension(name: str) -> Extension | None:
    pyx = os.path.join("sipsimple", "core", f"{name}.pyx")
    if not os.path.exists(os.path.join(HERE, pyx)):
        return None
    flags: list[str] = []
    for pc, debian in PKG_CONFIG_DEPS.get(name, {}).items():
        flags += pkg_config(pc, debian)
    libraries = []
    for header, lib, debian in PLAIN_DEPS.get(name, []):
        if not header_exists(header):
            raise MissingLibrary(
                f"sipsimple build: header '{header}' not found; install the Debian package '{debian}'"
            )
        libraries.append(lib)
    include_dirs = [f[2:] for f in flags if f.startswith("-I")]
    if name == "_media":
        import numpy

        include_dirs.append(numpy.get_include())
    return Extension(
        f"sipsimple.core.{name}",
        [pyx],
        include_dirs=include_dirs,
        library_dirs=[f[2:] for f in flags if f.startswith("-L")],
        libraries=[f[2:] for f in flags if f.startswith("-l")] + libraries,
        extra_compile_args=[f for f in flags if f[:2] not in ("-I", "-L", "-l")] + ["-O2", "-Wno-unused-function"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")] if name == "_media" else [],
    )


def ext_modules():
    from Cython.Build import cythonize

    # SIPSIMPLE_BUILD_ONLY=_core builds one extension (handy while another is being edited)
    only = os.environ.get("SIPSIMPLE_BUILD_ONLY")
    names = [only] if only else ["_core", "_media", "_msrp"]
    exts = [e for e in (extension(n) for n in names) if e is not None]
    return cythonize(
        exts,
        compiler_directives={"language_level": 3, "embedsignature": True, "boundscheck": False,
                             "wraparound": False, "cdivision": True},
        include_path=[os.path.join(HERE, "sipsimple", "core")],
        nthreads=int(os.environ.get("SIPSIMPLE_BUILD_JOBS", "2")),
    )


class build_ext_replacing(build_ext):
    """build_ext whose in-place copy replaces a module file instead of overwriting it.

    Overwriting truncates the inode that running interpreters have mapped, which kills
    them with SIGBUS; unlinking first leaves them their old copy.
    """

    def copy_file(self, infile, outfile, *args, **kwargs):
        if os.path.exists(outfile) and not os.path.samefile(infile, outfile):
            os.unlink(outfile)
        return super().copy_file(infile, outfile, *args, **kwargs)


if __name__ == "__main__" or "setuptools" in sys.modules:
    setup(ext_modules=ext_modules(), cmdclass={"build_ext": build_ext_replacing})
