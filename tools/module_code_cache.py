"""A bytecode cache for the Python code of Ansible's module payloads (AnsiballZ).

Why: every module task starts a Python process that imports
``ansible.module_utils.basic`` and the collection's module_utils (amazon.aws's,
ours) from the zip Ansible sends along. Python never caches bytecode for code
imported from a zip, so each of those processes compiles the same few hundred
kilobytes of source again: about a fifth of the CPU of an AWS module call and
over a third of a ``ping`` on this machine (``bench/module_code_cache.py``
measures it). ``make test`` and ``make demo`` run thousands of module calls on
two cores, so this is their biggest single cost after the work itself.

What: when ``FASTIER_MODULE_CODE_CACHE`` names a directory, zipimport's compile
step is wrapped: the code object of a source is kept in that directory under
the SHA-256 of the interpreter's bytecode magic number, its optimization level
and the source bytes, and is reused the next time the *same bytes* are
imported (its file names are set to the path of this import, so tracebacks
point where they always did). Nothing else changes: the module, its
arguments, its result and the controller's choice of code are the same; a
changed source is a different key. Without the variable nothing is wrapped.

The cache is only read from a directory this user owns that nobody else can
write to (its content is executed). Any error reading or writing it falls back
to Python's own compile.

Installed into a virtualenv by ``python tools/module_code_cache.py --install``
(``make demo`` and ``make test`` do it): this file is copied into the
virtualenv's site-packages with a ``.pth`` line that imports it at start-up,
which is how it reaches the module processes Ansible starts. Remove both files
(or unset the variable) to turn it off.
"""

from __future__ import annotations

import os
import sys

ENV = "FASTIER_MODULE_CODE_CACHE"
NAME = "fastier_module_code_cache"


def _rename(code, filename):
    """``code`` and the code objects nested in it, with ``co_filename`` set to ``filename``."""
    consts = tuple(_rename(c, filename) if isinstance(c, type(code)) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _usable(directory):
    """The cache directory exists (created 0700 if missing), is ours and nobody else can write to it."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.stat(directory)
    except OSError:
        return False
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def install(directory=None):
    """Wrap zipimport's compile step with the cache in ``directory`` (default: ``$FASTIER_MODULE_CODE_CACHE``).

    Returns True when the compile step is wrapped (the directory is checked at the first zip import).
    """
    directory = directory or os.environ.get(ENV)
    if not directory:
        return False
    import zipimport

    compile_source = getattr(zipimport, "_compile_source", None)
    if compile_source is None or getattr(compile_source, "_fastier_cache", False):
        return False
    # Every Python process of the virtualenv runs this: what only a zip import needs is set up at the first one.
    setup = {}

    def cached_compile_source(pathname, source):
        if not setup:
            import hashlib
            import marshal
            from importlib.util import MAGIC_NUMBER

            setup.update(sha256=hashlib.sha256, marshal=marshal, salt=MAGIC_NUMBER + bytes([sys.flags.optimize]), usable=_usable(directory))
        if not setup["usable"] or not isinstance(source, bytes):
            return compile_source(pathname, source)
        marshal = setup["marshal"]
        key = setup["sha256"](setup["salt"] + source).hexdigest()
        path = os.path.join(directory, key[:2], key)
        try:
            with open(path, "rb") as f:
                return _rename(marshal.loads(f.read()), pathname)
        except Exception:  # noqa: BLE001, S110 - missing or unreadable: compile as Python would
            pass
        code = compile_source(pathname, source)
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(marshal.dumps(code))
            os.replace(tmp, path)  # atomic: a reader sees all of it or nothing
        except OSError:
            pass
        return code

    cached_compile_source._fastier_cache = True
    zipimport._compile_source = cached_compile_source
    return True


def install_into(site_packages):
    """Copy this file into ``site_packages`` with the ``.pth`` line that runs :func:`install` at start-up."""
    import pathlib

    target = pathlib.Path(site_packages)
    changed = False
    wanted = {
        target / f"{NAME}.py": pathlib.Path(__file__).read_text(),
        # site runs a .pth line that starts with "import"; the variable check keeps it free when unset
        target / f"{NAME}.pth": f"import os, sys; os.environ.get({ENV!r}) and __import__({NAME!r}).install()\n",
    }
    for path, text in wanted.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed = True
    return changed


def main(argv):
    import sysconfig

    if argv != ["--install"]:
        print(f"usage: {sys.executable} {__file__} --install", file=sys.stderr)
        return 2
    site_packages = sysconfig.get_path("purelib")
    if install_into(site_packages):
        print(f"module code cache: installed into {site_packages} (active when {ENV} is set)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
