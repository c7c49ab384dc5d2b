"""The bundle recipe (packaging/), checked without building a bundle (make dist-test runs one).

A frozen LlamaDesk finds its demo model inside itself; the program started as
``<program> -m converters.quantize_worker`` (how the converter starts its worker, with the
frozen program as ``sys.executable``) quantizes; the recipe collects every module and data
file of the project, so a new module is bundled without editing it; and nothing the
project imports unconditionally is left out of the bundle.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))

import bundle_contents  # noqa: E402
import platforms  # noqa: E402


def test_a_frozen_llamadesk_finds_the_demo_model_inside_itself(tmp_path, monkeypatch):
    from models import bundled

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert bundled.bundled_model_path() is None          # not the development install's copy
    inside = tmp_path / bundled.BUNDLED_FILE
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"GGUF")
    assert bundled.bundled_model_path() == inside
    assert bundled.is_bundled(inside)


def test_the_program_runs_the_quantizer_worker_as_python_would(tiny_gguf_factory, tmp_path):
    from converters.quant_types import QUANT_TYPES_INFO

    src = tiny_gguf_factory("plain", "f16")
    dst = tmp_path / "tiny.q8_0.gguf"
    out = subprocess.run([sys.executable, str(ROOT / "packaging" / "entry.py"), "-m", "converters.quantize_worker",
                          str(src), str(dst), str(QUANT_TYPES_INFO["q8_0"].file_type), "1"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "DONE 0" in out.stdout
    assert dst.read_bytes()[:4] == b"GGUF" and dst.stat().st_size < src.stat().st_size


@pytest.mark.parametrize("module", ["no_such.thing_worker", "json.tool", "converters.quantize"])
def test_the_program_runs_no_other_module(module, tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "packaging" / "entry.py"), "-m", module],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: there is no worker module {module!r} in this LlamaDesk"
    assert out.stdout == ""


def test_without_m_the_program_is_llamadesk(tmp_path):
    from common.version import __version__

    out = subprocess.run([sys.executable, str(ROOT / "packaging" / "entry.py"), "--version"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"LlamaDesk {__version__}"


def _project_modules() -> set[str]:
    found = {"main"}
    for package in bundle_contents.own_packages(ROOT):
        folder = ROOT / package.replace(".", "/")
        found.add(package)
        found |= {f"{package}.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__"}
    return found


def test_every_module_of_every_package_is_collected():
    modules = set(bundle_contents.own_modules(ROOT))
    on_disk = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for top in ("app", "chat", "cli", "common", "converters", "engine", "models", "server")
               for p in (ROOT / top).rglob("*.py")}
    assert on_disk <= modules, sorted(on_disk - modules)
    assert "cli.serve_cmd" in modules and "converters.quantize_worker" in modules
    assert not any(m.startswith(("tests", "bench", "packaging")) for m in modules)


def test_every_package_data_file_and_the_assets_are_collected():
    datas = {(Path(src).relative_to(ROOT).as_posix(), dest) for src, dest in bundle_contents.own_datas(ROOT)}
    assert ("models/catalog.json", "models") in datas
    assert ("assets", "assets") in datas


def _unconditional_imports(path: Path) -> set[str]:
    """Top-level names imported by a module, except inside ``try`` blocks that catch
    ImportError (optional packages such as tokenizers)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    optional: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                or isinstance(h.type, ast.Tuple) and any(getattr(e, "id", "") == "ImportError" for e in h.type.elts)
                for h in node.handlers):
            optional |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_nothing_the_project_needs_is_excluded_from_the_bundle():
    excluded = set(bundle_contents.EXCLUDES)
    problems = []
    for module in sorted(_project_modules()):
        path = ROOT / (module.replace(".", "/") + ".py")
        if not path.exists():
            path = ROOT / module.replace(".", "/") / "__init__.py"
        for name in _unconditional_imports(path):
            parts = name.split(".")
            if any(".".join(parts[:i]) in excluded for i in range(1, len(parts) + 1)):
                problems.append(f"{module} imports {name}")
    assert not problems, problems


@pytest.mark.parametrize("platform_", [platforms.LINUX, platforms.MACOS, platforms.WINDOWS], ids=lambda p: p.name)
def test_each_platform_has_a_window_and_a_terminal_program(platform_, tmp_path):
    window = platform_.program(tmp_path, window=True)
    cli = platform_.program(tmp_path)
    assert tmp_path in window.parents and tmp_path in cli.parents
    assert any(console for _name, console in platform_.executables) or platform_.name == "macos"
    if platform_.name == "windows":
        assert window.name == "LlamaDesk.exe" and cli.name == "llamadesk-cli.exe"


def test_the_gpu_driver_is_never_bundled_and_left_out_qt_files_go():
    toc = [("libcuda.so.1", "/usr/lib/libcuda.so.1", "BINARY"),
           ("PySide6/Qt/translations/qt_de.qm", "/x/qt_de.qm", "DATA"),
           ("PySide6/Qt/plugins/platforms/libqxcb.so", "/x/libqxcb.so", "DATA"),
           ("assets/light.qss", "/x/light.qss", "DATA")]
    kept = [e[0] for e in bundle_contents.qt_filter(toc, platforms.LINUX)]
    assert kept == ["PySide6/Qt/plugins/platforms/libqxcb.so", "assets/light.qss"]


def test_a_separately_built_llama_cpp_is_bundled_when_named(tmp_path, monkeypatch):
    lib = tmp_path / "llama_cpp" / "lib"
    lib.mkdir(parents=True)
    for name in ("libllama.so", "libllama.so.0", "libllama.so.0.5.0", "libggml-cpu.so", "libggml-cpu.so.0",
                 "libggml-cpu.so.0.25.3", "README.txt"):
        (lib / name).write_bytes(b"\x7fELF")
    monkeypatch.setenv("LLAMADESK_LLAMA_CPP_DIR", str(tmp_path))
    assert bundle_contents.llama_package_dir() == tmp_path.resolve()
    assert bundle_contents.llama_pathex() == [str(tmp_path.resolve())]
    collected = sorted(Path(src).name for src, dest in bundle_contents.llama_library_binaries(platforms.LINUX)
                       if dest == "llama_cpp/lib")
    # the names llama-cpp-python opens and the sonames the libraries ask for; not the third copy
    assert collected == ["libggml-cpu.so", "libggml-cpu.so.0", "libllama.so", "libllama.so.0"]


def test_without_a_separate_build_the_installed_llama_cpp_is_bundled(monkeypatch):
    import llama_cpp

    monkeypatch.delenv("LLAMADESK_LLAMA_CPP_DIR", raising=False)
    assert bundle_contents.llama_package_dir() == Path(llama_cpp.__file__).resolve().parent.parent
    assert bundle_contents.llama_pathex() == []   # the environment's own packages are found anyway


def test_a_named_folder_without_llama_cpp_stops_the_build(tmp_path, monkeypatch):
    monkeypatch.setenv("LLAMADESK_LLAMA_CPP_DIR", str(tmp_path))
    with pytest.raises(SystemExit, match="holds no llama_cpp/lib"):
        bundle_contents.llama_package_dir()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux recipe strips with binutils")
def test_only_the_python_library_loses_its_debug_information(tmp_path):
    import llama_cpp

    small_elf = str(Path(llama_cpp.__file__).parent / "lib" / "libggml.so")
    toc = [("libpython3.11.so.1.0", small_elf, "BINARY"),
           ("numpy.libs/libscipy_openblas64_.so", small_elf, "BINARY"),
           ("assets/light.qss", "/x/light.qss", "DATA")]
    out = bundle_contents.without_debug_info(toc, platforms.LINUX, tmp_path)
    assert [e[0] for e in out] == [e[0] for e in toc]
    assert out[0][1] == str(tmp_path / "without-debug-info" / "libpython3.11.so.1.0")
    assert Path(out[0][1]).read_bytes()[:4] == b"\x7fELF"
    assert out[1:] == toc[1:]          # auditwheel-repaired libraries break when stripped
