"""tools/module_code_cache.py: code imported from a zip is compiled once per source, then read from the cache.

Each case imports a package from a zip in a fresh interpreter (as Ansible's
module processes do), with the cache installed over a compile step that
counts its calls: a hit does not compile, a miss does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from tools import module_code_cache

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, sys, traceback, zipimport
    sys.path.insert(0, {root!r})
    compiled = []
    original = zipimport._compile_source
    def counting(pathname, source):
        compiled.append(pathname)
        return original(pathname, source)
    zipimport._compile_source = counting
    from tools import module_code_cache
    active = module_code_cache.install({cache!r})
    sys.path.insert(0, {archive!r})
    import payload.tool
    try:
        payload.tool.boom()
    except RuntimeError:
        where = traceback.extract_tb(sys.exc_info()[2])[-1].filename
    print(json.dumps({{"active": active, "value": payload.tool.VALUE, "compiled": compiled, "where": where}}))
    """
)


def make_zip(path: Path, value: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("payload/__init__.py", "")
        zf.writestr("payload/tool.py", f"VALUE = {value!r}\n\ndef boom():\n    raise RuntimeError('from the zip')\n")
    return path


def run(archive: Path, cache: Path | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != module_code_cache.ENV}
    script = SCRIPT.format(root=str(ROOT), cache=str(cache) if cache else None, archive=str(archive))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file())


def test_a_source_is_compiled_once_then_read_from_the_cache_wherever_its_zip_is(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = run(make_zip(tmp_path / "a" / "payload.zip", "one"), cache)
    assert first["active"] is True and first["value"] == "one"
    # Compiled once each (Python's own zipimport compiles a module twice: to look it up and to run it).
    assert sorted(Path(p).name for p in first["compiled"]) == ["__init__.py", "tool.py"] and len(entries(cache)) == 2
    assert oct(cache.stat().st_mode & 0o777) == "0o700"

    # Another run from a zip elsewhere (Ansible's temp dir differs every time): nothing compiled,
    # and the traceback names the file of this import, not the one the cache was written from.
    moved = tmp_path / "b" / "payload.zip"
    moved.parent.mkdir()
    shutil.copy(tmp_path / "a" / "payload.zip", moved)
    second = run(moved, cache)
    assert second["value"] == "one" and second["compiled"] == []
    assert second["where"] == str(moved / "payload" / "tool.py")


def test_a_changed_source_is_compiled_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    run(make_zip(tmp_path / "a" / "payload.zip", "one"), cache)
    changed = run(make_zip(tmp_path / "b" / "payload.zip", "two"), cache)
    assert changed["value"] == "two"
    assert [Path(p).name for p in changed["compiled"]] == ["tool.py"]  # the unchanged __init__.py came from the cache
    assert len(entries(cache)) == 3


def test_a_damaged_entry_is_compiled_and_written_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    archive = make_zip(tmp_path / "a" / "payload.zip", "one")
    run(archive, cache)
    for entry in entries(cache):
        entry.write_bytes(b"not marshal data")
    again = run(archive, cache)
    assert again["value"] == "one" and len(again["compiled"]) == 2
    assert run(archive, cache)["compiled"] == []  # the entries were rewritten whole


def test_a_directory_others_can_write_to_is_not_used(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    archive = make_zip(tmp_path / "a" / "payload.zip", "one")
    uncached = run(archive, None)["compiled"]
    for _ in range(2):
        result = run(archive, cache)
        assert result["value"] == "one" and result["compiled"] == uncached
    assert entries(cache) == []


def test_without_a_directory_nothing_is_wrapped(tmp_path: Path) -> None:
    result = run(make_zip(tmp_path / "a" / "payload.zip", "one"), None)
    # Python's zipimport compiles a module when it looks it up and again when it runs it.
    assert result["active"] is False and sorted(Path(p).name for p in result["compiled"]) == ["__init__.py", "__init__.py", "tool.py", "tool.py"]


def test_install_into_writes_the_start_up_hook_once(tmp_path: Path) -> None:
    assert module_code_cache.install_into(tmp_path) is True
    assert module_code_cache.install_into(tmp_path) is False
    pth = (tmp_path / f"{module_code_cache.NAME}.pth").read_text()
    assert pth.startswith("import ") and module_code_cache.ENV in pth
    assert (tmp_path / f"{module_code_cache.NAME}.py").read_text() == Path(module_code_cache.__file__).read_text()
