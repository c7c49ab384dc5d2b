"""The Library tab shows what the library refused and why: a split set with a hostile
second part names the part; a checkpoint with a malformed config.json cannot be converted."""
from __future__ import annotations

import shutil

import pytest

from app.main_window import MainWindow
from common.paths import data_paths
from models import hub_env
from tests.fixtures.hub_server import write_llama3_gguf
from tests.test_hostile_gguf_sets import HOSTILE_SECOND_PARTS, PART1, PART2

pytestmark = pytest.mark.usefixtures("one_engine_thread")


@pytest.fixture
def library_tab(qtbot, smollm2_path, tiny_llama, tmp_path):
    folder = data_paths().models / "org" / "Tiny-GGUF"
    folder.mkdir(parents=True)
    good = write_llama3_gguf(tmp_path / "p.gguf", tensor_bytes=64 << 10).read_bytes()
    (folder / PART1).write_bytes(good)
    (folder / PART2).write_bytes(HOSTILE_SECOND_PARTS["tensor count"][0](good))
    snap = hub_env.hub_cache_dir() / "models--org--broken" / "snapshots" / ("b" * 40)
    shutil.copytree(tiny_llama.path, snap)
    (snap / "config.json").write_text('{"architectures": ["LlamaForCausalLM"], ')
    w = MainWindow(str(smollm2_path), n_ctx=512)
    qtbot.addWidget(w)
    win = w.open_model_manager()
    with qtbot.waitSignal(win.library.scan_finished, timeout=30000):
        pass
    yield win.library
    w.close()


def _select(tab, name: str) -> None:
    tab.list.setCurrentRow(next(i for i, e in enumerate(tab.entries) if e.name == name))


def test_the_refused_part_and_the_broken_config_are_shown(library_tab):
    tab = library_tab
    _select(tab, PART1)
    assert tab.warning.isVisibleTo(tab)
    assert tab.warning.text().startswith(f"This model was refused and will not be opened: part 2 of 2 ({PART2}): "
                                         "tensor count")
    assert not tab.use_button.isEnabled()
    _select(tab, "org/broken")
    assert tab.list.currentItem().text().endswith("refused: cannot be converted")
    assert tab.warning.text().startswith("This checkpoint was refused and will not be converted: config.json in ")
    assert "is not valid JSON" in tab.warning.text()
    assert not tab.use_button.isEnabled()
