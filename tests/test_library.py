"""The local library: metadata from real GGUFs, the EOS warning, provenance, remove, import."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from common.paths import data_paths
from models import file_download, library
from models.gguf_info import EOS_WARNING
from models.gguf_validate import UnsafeGGUFError
from tests.fixtures.hub_server import GGUF_MAIN, GGUF_REPO, OPEN_REPO, write_llama3_gguf


def by_name(entries):
    return {e.name: e for e in entries}


def test_reads_smollm2_metadata_from_a_user_folder(smollm2_path):
    library.add_folder(smollm2_path.parent)
    (entry,) = [e for e in library.scan() if e.kind == "gguf"]
    assert entry.source == "folder" and entry.usable and entry.path == smollm2_path
    info = entry.info
    assert info.architecture == "llama" and info.quant == "Q4_1"
    assert 134e6 < info.parameters < 136e6 and info.context_length == 8192
    assert info.has_chat_template and info.eos == "<|im_end|>" and info.bos == "<|im_start|>"
    assert entry.warnings == [] and info.file_size == smollm2_path.stat().st_size
    # The second scan answers from the cache in the index file (no GGUFReader pass).
    assert str(smollm2_path.resolve()) in library.load_index()["meta"]
    assert library.scan()[0].info == info


def test_converted_tiny_gguf_and_the_eos_warning(tiny_gguf_factory, tmp_path):
    models = data_paths().models
    models.mkdir(parents=True)
    shutil.copy(tiny_gguf_factory("plain", "f16"), models / "tiny-f16.gguf")
    write_llama3_gguf(models / "runs-on.gguf", eos="<|end_of_text|>", name="Llama 3 8B Instruct",
                      tensor_bytes=4096)
    entries = by_name(library.scan())
    tiny = entries["tiny-f16.gguf"].info
    assert tiny.architecture == "llama" and tiny.quant == "F16" and tiny.has_chat_template
    assert tiny.eos == "<|eot_id|>" and tiny.eot == "<|eot_id|>" and tiny.bos == "<|begin_of_text|>"
    assert tiny.parameters > 1e6 and tiny.is_instruct and tiny.warnings == []
    bad = entries["runs-on.gguf"]
    assert bad.info.eos == "<|end_of_text|>" and bad.warnings == [EOS_WARNING]


def test_the_checks_and_the_library_say_the_same_parameter_count(tiny_gguf_factory):
    """llama.cpp's own size label ("llama ?B F16" for a size it has no name for) stays out
    of the conversion checks; the count is said once, the way the library says it."""
    from app.models_manager.library_details import list_text
    from converters.verify import model_kind, verify_gguf

    models = data_paths().models
    models.mkdir(parents=True)
    shutil.copy(tiny_gguf_factory("plain", "f16"), models / "tiny-f16.gguf")
    (entry,) = library.scan()
    loads = next(c for c in verify_gguf(entry.path).checks if c.name == "loads")
    assert loads.detail.startswith("llama.cpp built llama F16: 1.71 M parameters, 2 layers")
    assert "?B" not in loads.detail
    assert "1.71 M parameters · F16" in list_text(entry)
    assert model_kind("llama 8B Q4_K - Medium") == "llama Q4_K - Medium"
    assert model_kind("llama 8x7B Q8_0") == "llama Q8_0" and model_kind("odd") == "odd"


def test_the_demo_model_is_not_removed_even_when_found_in_a_folder(smollm2_path):
    library.add_folder(smollm2_path.parent)
    (entry,) = [e for e in library.scan() if e.kind == "gguf"]
    with pytest.raises(library.NotRemovableError, match="part of LlamaDesk's installation"):
        library.remove(entry)
    assert smollm2_path.is_file()


def test_a_malformed_gguf_is_listed_with_its_problem(tmp_path):
    models = data_paths().models
    models.mkdir(parents=True)
    good = write_llama3_gguf(tmp_path / "x.gguf", tensor_bytes=4096).read_bytes()
    (models / "cut.gguf").write_bytes(good[:-100])
    (entry,) = library.scan()
    assert not entry.usable and entry.info is None
    assert "lies outside" in entry.problem and entry.problem.startswith("cut.gguf:")


def test_download_records_provenance_and_remove_deletes_files(hub_server):
    path = file_download.download_file(GGUF_REPO, GGUF_MAIN)
    entry = by_name(library.scan())[GGUF_MAIN]
    assert entry.provenance == {"origin": "downloaded", "repo": GGUF_REPO, "quant": "Q4_K_M",
                                "revision": hub_server.state.repos[GGUF_REPO].sha}
    library.remove(entry)
    assert not path.exists() and not (data_paths().models / "bartowski").exists()
    assert library.scan() == []


def test_checkpoints_in_the_hf_cache_are_listed_and_removed(hub_server):
    from models.repo_download import download_repo

    download_repo(OPEN_REPO)
    (ckpt,) = library.scan()
    assert ckpt.kind == "checkpoint" and ckpt.source == "hf-cache" and ckpt.repo_id == OPEN_REPO
    library.remove(ckpt)
    assert not file_download.repo_cache_dir(OPEN_REPO).exists() and library.scan() == []


def test_import_validates_and_copies(tmp_path):
    src = write_llama3_gguf(tmp_path / "mine-Q8_0.gguf", tensor_bytes=4096)
    entry = library.import_gguf(src)
    assert entry.path == data_paths().models / "imported" / "mine-Q8_0.gguf" and entry.usable
    assert entry.path.read_bytes() == src.read_bytes()
    assert by_name(library.scan())["mine-Q8_0.gguf"].provenance["origin"] == "imported"
    (tmp_path / "evil.gguf").write_bytes(b"GGUF" + b"\3\0\0\0" + b"\xff" * 16)
    with pytest.raises(UnsafeGGUFError, match="evil.gguf: tensor count"):
        library.import_gguf(tmp_path / "evil.gguf")
    assert not (data_paths().models / "imported" / "evil.gguf").exists()


def test_an_interrupted_import_leaves_no_half_file(tmp_path, monkeypatch):
    src = write_llama3_gguf(tmp_path / "big-Q8_0.gguf", tensor_bytes=4096)

    def copy_then_ctrl_c(a, b):
        Path(b).write_bytes(Path(a).read_bytes()[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(library.shutil, "copyfile", copy_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        library.import_gguf(src)
    assert list((data_paths().models / "imported").iterdir()) == []


def test_offline_mode_lists_what_is_on_disk(hub_server, monkeypatch):
    file_download.download_file(GGUF_REPO, GGUF_MAIN)
    before = len(hub_server.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert [e.name for e in library.scan()] == [GGUF_MAIN]
    assert len(hub_server.requests) == before
