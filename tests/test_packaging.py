"""Packaging: the top-level passes/, kernels/ and runtime/ folders install inside graphc.

pyproject.toml maps them into the package with setuptools ``package-dir``. That mapping has
to hold both for the development install (``pip install -e .``, which the test run itself
uses) and for a built wheel, checked here in a fresh virtual environment that cannot see the
repository.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

MODULES = (
    "graphc",
    "graphc.passes",
    "graphc.kernels",
    "graphc.kernels.cpu",
    "graphc.kernels.cuda",
    "graphc.runtime",
)

# Distributions graphc needs at import time; the wheel's venv borrows them from this one.
DEPENDENCIES = ("numpy", "numba", "llvmlite", "networkx", "scipy")

# What a copy of the repository for building leaves out: version control, caches, build
# output, and any virtual environment (recognized by its pyvenv.cfg, whatever its name).
IGNORED_WHEN_COPYING = shutil.ignore_patterns(
    ".git", "__pycache__", "build", "dist", "*.egg-info", ".pytest_cache", ".hypothesis",
    ".ruff_cache",
)  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    module = importlib.import_module(name)
    # A namespace package here means a missing __init__.py, or an editable install made
    # before it existed (setuptools records that at install time): reinstall with pip -e.
    assert module.__file__ is not None, f"{name} was imported as a namespace package"


def run(command: list[str], cwd: Path) -> str:
    """Run a command, failing the test with its output if it fails; return its stdout."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def ignore_when_copying(directory: str, names: list[str]) -> set[str]:
    """Names under ``directory`` that a build copy of the repository leaves out."""
    ignored = set(IGNORED_WHEN_COPYING(directory, names))
    ignored |= {name for name in names if (Path(directory) / name / "pyvenv.cfg").exists()}
    return ignored


def build_wheel(destination: Path) -> Path:
    """Build graphc's wheel from a clean copy of the repository.

    Building in the repository itself would leave build/ behind, and setuptools would then
    pack stale files from build/lib (modules since deleted) into every later wheel.
    """
    source = destination / "source"
    shutil.copytree(REPO_ROOT, source, ignore=ignore_when_copying)
    wheels = destination / "wheels"
    run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(wheels)],
        cwd=source,
    )  # fmt: skip
    (wheel,) = wheels.glob("graphc-*.whl")
    return wheel


def dependency_directories() -> list[str]:
    """The site-packages folders (of this interpreter) that hold graphc's dependencies."""
    folders = []
    for name in DEPENDENCIES:
        module = importlib.import_module(name)
        folder = str(Path(module.__file__).resolve().parent.parent)
        if folder not in folders:
            folders.append(folder)
    return folders


def make_venv(root: Path) -> tuple[Path, Path]:
    """Create a virtual environment without pip; return its python and site-packages."""
    run([sys.executable, "-m", "venv", "--without-pip", str(root)], cwd=root.parent)
    python = root / ("Scripts" if os.name == "nt" else "bin") / "python"
    site_packages = run(
        [str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=root.parent,
    ).strip()
    return python, Path(site_packages)


@pytest.mark.slow
def test_wheel_installs_every_layer_inside_graphc(tmp_path):
    wheel = build_wheel(tmp_path)

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for module in MODULES:
        assert f"{module.replace('.', '/')}/__init__.py" in names, f"{module} not in {wheel.name}"
    stray = sorted(name for name in names if name.split("/")[0] in ("passes", "kernels", "runtime"))
    assert not stray, f"top-level folders leaked into the wheel as packages: {stray}"

    venv = tmp_path / "venv"
    python, site_packages = make_venv(venv)
    run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--quiet",
         "--target", str(site_packages), str(wheel)],
        cwd=tmp_path,
    )  # fmt: skip
    # Python adds the folders a .pth names to sys.path but does not read the .pth files inside
    # them, so numpy and numba become importable while this environment's editable-install
    # finder for graphc does not.
    (site_packages / "deps.pth").write_text("\n".join(dependency_directories()) + "\n")

    # -I and a neutral working directory keep the repository off sys.path.
    script = (
        "import importlib\n"
        f"for name in {MODULES!r}:\n"
        "    print(importlib.import_module(name).__file__)\n"
    )
    printed = run([str(python), "-I", "-c", script], cwd=tmp_path).split()

    assert len(printed) == len(MODULES), printed
    for module, file in zip(MODULES, printed, strict=True):
        assert Path(file).resolve().is_relative_to(venv.resolve()), (
            f"{module} was imported from {file}, not from the wheel installed in {venv}"
        )
