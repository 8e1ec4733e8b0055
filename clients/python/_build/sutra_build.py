"""A PEP 517 build backend for ``sutra-client`` in the standard library only.

Why not setuptools: ``pip install ./clients/python`` must work offline. setuptools before 70.1 (the one
Python 3.11's ``venv`` ships is 65.5) cannot build a wheel without the ``wheel`` package, which a fresh venv
does not have and an offline machine cannot fetch. This backend needs nothing: pip's isolated build
environment stays empty, no index is asked.

It builds a pure-Python wheel (``py3-none-any``) of the ``sutra`` package, an sdist, and an editable wheel
(PEP 660: a ``.pth`` file naming this directory). Name, version, summary and ``requires-python`` come from
``pyproject.toml``'s ``[project]`` table, the long description from ``README.md``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile
from typing import Dict, List, Optional, Tuple

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PACKAGE = "sutra"

__all__ = [
    "build_wheel",
    "build_sdist",
    "build_editable",
    "get_requires_for_build_wheel",
    "get_requires_for_build_sdist",
    "get_requires_for_build_editable",
    "prepare_metadata_for_build_wheel",
    "prepare_metadata_for_build_editable",
]


def _project() -> Dict[str, str]:
    """The string keys of pyproject.toml's [project] table (a plain reading: this file's own simple layout)."""
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    if not m:
        raise RuntimeError("pyproject.toml has no [project] table")
    out: Dict[str, str] = {}
    for key, value in re.findall(r'^([A-Za-z][A-Za-z0-9_-]*)\s*=\s*"([^"]*)"\s*$', m.group(1), re.M):
        out[key] = value
    for key in ("name", "version"):
        if key not in out:
            raise RuntimeError(f"pyproject.toml's [project] has no {key}")
    return out


def _names() -> Tuple[str, str, str]:
    p = _project()
    dist = re.sub(r"[-_.]+", "_", p["name"]).lower()
    return p["name"], dist, p["version"]


def _metadata() -> str:
    p = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}"]
    if "description" in p:
        lines.append(f"Summary: {p['description']}")
    if "requires-python" in p:
        lines.append(f"Requires-Python: {p['requires-python']}")
    readme = os.path.join(ROOT, "README.md")
    body = ""
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = f.read()
    return "\n".join(lines) + "\n\n" + body


def _package_files() -> List[Tuple[str, str]]:
    """(path in the wheel, path on disk) of every file of the package (no caches)."""
    out = []
    base = os.path.join(ROOT, PACKAGE)
    for d, dirs, files in os.walk(base):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            full = os.path.join(d, name)
            out.append((os.path.relpath(full, ROOT).replace(os.sep, "/"), full))
    return out


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _write_dist_info(directory: str) -> str:
    _, dist, version = _names()
    info = f"{dist}-{version}.dist-info"
    os.makedirs(os.path.join(directory, info), exist_ok=True)
    for name, data in _dist_info_files().items():
        with open(os.path.join(directory, info, name), "w", encoding="utf-8") as f:
            f.write(data)
    return info


def _dist_info_files() -> Dict[str, str]:
    return {
        "METADATA": _metadata(),
        "WHEEL": "Wheel-Version: 1.0\nGenerator: sutra_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        "top_level.txt": PACKAGE + "\n",
    }


def _wheel(directory: str, editable: bool) -> str:
    _, dist, version = _names()
    info = f"{dist}-{version}.dist-info"
    filename = f"{dist}-{version}-py3-none-any.whl"
    entries: List[Tuple[str, bytes]] = []
    if editable:
        entries.append((f"__editable__.{dist}-{version}.pth", (ROOT + "\n").encode()))
    else:
        for arc, full in _package_files():
            with open(full, "rb") as f:
                entries.append((arc, f.read()))
    for name, text in _dist_info_files().items():
        entries.append((f"{info}/{name}", text.encode("utf-8")))
    record = "".join(f"{arc},{_digest(data)},{len(data)}\n" for arc, data in entries) + f"{info}/RECORD,,\n"
    entries.append((f"{info}/RECORD", record.encode("utf-8")))
    stamp = time.localtime(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")))[:6]
    with zipfile.ZipFile(os.path.join(directory, filename), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in entries:
            zi = zipfile.ZipInfo(arc, date_time=stamp)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return filename


# MARK: PEP 517 / PEP 660 hooks


def get_requires_for_build_wheel(config_settings: Optional[dict] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[dict] = None) -> List[str]:
    return []


def get_requires_for_build_editable(config_settings: Optional[dict] = None) -> List[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[dict] = None) -> str:
    return _write_dist_info(metadata_directory)


def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: Optional[dict] = None) -> str:
    return _write_dist_info(metadata_directory)


def build_wheel(wheel_directory: str, config_settings: Optional[dict] = None,
                metadata_directory: Optional[str] = None) -> str:
    return _wheel(wheel_directory, editable=False)


def build_editable(wheel_directory: str, config_settings: Optional[dict] = None,
                   metadata_directory: Optional[str] = None) -> str:
    return _wheel(wheel_directory, editable=True)


def build_sdist(sdist_directory: str, config_settings: Optional[dict] = None) -> str:
    _, dist, version = _names()
    base = f"{dist}-{version}"
    filename = f"{base}.tar.gz"
    files = [(arc, full) for arc, full in _package_files()]
    for extra in ("pyproject.toml", "README.md", "_build/sutra_build.py"):
        if os.path.exists(os.path.join(ROOT, extra)):
            files.append((extra, os.path.join(ROOT, extra)))
    tests = os.path.join(ROOT, "tests")
    if os.path.isdir(tests):
        for name in sorted(os.listdir(tests)):
            if name.endswith(".py"):
                files.append((f"tests/{name}", os.path.join(tests, name)))
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as t:
        pkg_info = _metadata().encode("utf-8")
        ti = tarfile.TarInfo(f"{base}/PKG-INFO")
        ti.size = len(pkg_info)
        ti.mode = 0o644
        t.addfile(ti, io.BytesIO(pkg_info))
        for arc, full in files:
            t.add(full, arcname=f"{base}/{arc}", recursive=False)
    return filename
