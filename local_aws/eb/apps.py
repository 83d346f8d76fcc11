"""What a version's bundle runs on the local Python platform.

Elastic Beanstalk's Python platform runs the ``web:`` process of the
bundle's ``Procfile`` (or, without a Procfile, gunicorn on the
``WSGIPath`` of ``aws:elasticbeanstalk:container:python``), with the
bundle's folder as working directory, the environment properties as
environment variables and ``PORT`` (8000), behind nginx. Locally each
instance listens on its own loopback port instead (see
docs/local-aws-elasticbeanstalk.md, "Environments that run their version").

A bundle has something to run when its Procfile has a ``web:`` process, or,
without a Procfile, when it holds the WSGIPath module *and* a
``requirements.txt``. A bundle with a lone ``application.py`` is what tests
use as a placeholder; it stays simulated.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import zipfile
from dataclasses import dataclass
from pathlib import Path

PLATFORM_PORT = 8000
# gunicorn's --bind/-b (and its ``=`` form); -b only with a host:port, since
# other programs use -b for other things (python -b).
_BIND_LONG = re.compile(r"(?<!\S)--bind(?:=|\s+)(?P<addr>[^\s'\";&|]+)")
_BIND_SHORT = re.compile(r"(?<!\S)-b\s*(?P<addr>[^\s'\";&|]*:\d+)(?![^\s;&|])")


@dataclass(frozen=True)
class WebProcess:
    command: str  # as the bundle (or the platform's default) says, before the local bind rewrite
    origin: str  # "Procfile" or "WSGIPath"


def web_process(archive: zipfile.ZipFile, wsgi_path: str = "application", processes: int = 1, threads: int = 15) -> WebProcess | None:
    """The web process the platform runs for this bundle, or None when there is nothing to run."""
    names = set(archive.namelist())
    if "Procfile" in names:
        for line in archive.read("Procfile").decode(errors="replace").splitlines():
            name, sep, command = line.partition(":")
            if sep and name.strip() == "web" and command.strip():
                return WebProcess(command.strip(), "Procfile")
        return None
    module, _, attribute = wsgi_path.strip().partition(":")
    module = module.removesuffix(".py").replace("/", ".")
    if not module or module.replace(".", "/") + ".py" not in names or "requirements.txt" not in names:
        return None
    target = f"{module}:{attribute or 'application'}"
    return WebProcess(f"gunicorn --bind :{PLATFORM_PORT} --workers {processes} --threads {threads} {target}", "WSGIPath")


def _local_address(addr: str, port: int) -> str | None:
    if addr.startswith(("unix:", "fd://")):
        return None
    return f"127.0.0.1:{port}"


def bind_locally(command: str, port: int) -> str:
    """Rewrite gunicorn's ``--bind``/``-b`` addresses (``:8000``, ``0.0.0.0:8000``...) to ``127.0.0.1:<port>``."""

    def long_form(match: re.Match[str]) -> str:
        local = _local_address(match["addr"], port)
        return match[0] if local is None else f"--bind {local}"

    def short_form(match: re.Match[str]) -> str:
        local = _local_address(match["addr"], port)
        return match[0] if local is None else f"-b {local}"

    return _BIND_SHORT.sub(short_form, _BIND_LONG.sub(long_form, command))


def _control_socket_option() -> str:
    """gunicorn >= 25 opens a control socket under $HOME; instances here do not need one (and paths get long)."""
    try:
        major = int(importlib.metadata.version("gunicorn").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return ""
    return "--no-control-socket" if major >= 25 else ""


def gunicorn_args(existing: str | None, port: int) -> str:
    """``GUNICORN_CMD_ARGS`` that binds loopback first (a config file or ``$PORT`` would bind 0.0.0.0)."""
    rest = bind_locally(existing or "", port)
    return " ".join(part for part in (f"--bind=127.0.0.1:{port}", _control_socket_option(), rest) if part)


@dataclass(frozen=True)
class RequirementsCheck:
    missing: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()  # "name==x (installed y)"
    unreadable: tuple[str, ...] = ()


def check_requirements(bundle: Path) -> RequirementsCheck:
    """Compare the bundle's requirements.txt with what the endpoint's Python has (nothing is installed)."""
    path = bundle / "requirements.txt"
    if not path.is_file():
        return RequirementsCheck()
    try:
        from packaging.requirements import InvalidRequirement, Requirement
        from packaging.version import InvalidVersion, Version
    except ImportError:  # pragma: no cover - packaging comes with pip and ansible-core
        return RequirementsCheck()
    missing: list[str] = []
    mismatched: list[str] = []
    unreadable: list[str] = []
    seen: set[Path] = set()

    def read(file: Path) -> None:
        if file in seen or not file.is_file():
            return
        seen.add(file)
        for raw in file.read_text(errors="replace").splitlines():
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(("-r ", "--requirement ")):
                included = (file.parent / shlex.split(line)[1]).resolve()
                if included.is_relative_to(bundle.resolve()):
                    read(included)
                continue
            if line.startswith("-"):
                continue  # --index-url, -c, -e ...: pip options, nothing to compare
            try:
                req = Requirement(line)
            except InvalidRequirement:
                unreadable.append(line)
                continue
            if req.marker is not None and not req.marker.evaluate():
                continue
            try:
                installed = importlib.metadata.version(req.name)
            except importlib.metadata.PackageNotFoundError:
                missing.append(str(req))
                continue
            try:
                fits = not req.specifier or req.specifier.contains(Version(installed), prereleases=True)
            except InvalidVersion:
                fits = True
            if not fits:
                mismatched.append(f"{req} (installed {installed})")

    read(path)
    return RequirementsCheck(tuple(missing), tuple(mismatched), tuple(unreadable))
