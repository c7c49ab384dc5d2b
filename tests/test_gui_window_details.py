"""Details of the main window a new user meets in the first hour: a layout that holds still
while a model loads, a default size that fits the screen, the model picker, the context
meter, the conversation open at launch, readable radio buttons, the servers table, the
"New here?" banner."""
from __future__ import annotations

import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QCheckBox, QRadioButton, QStyle, QStyleOptionButton

from app import theme
from app.main_window import MainWindow
from common.settings import RemoteServer, load_settings
from tests.gui_helpers import send_and_wait

pytestmark = pytest.mark.usefixtures("one_engine_thread")


def test_the_window_is_as_wide_while_a_model_loads_as_once_loaded(qtbot, make_window):
    """Otherwise a window restored at a narrow width squeezes its sidebar while loading
    and lets it spring back some time after the model is ready (the flaky geometry test)."""
    w = make_window()
    loaded = w.minimumSizeHint().width()
    w.model_bar.show_loading("SmolLM2-135M-Instruct.Q4_1")
    QApplication.processEvents()
    assert w.minimumSizeHint().width() == loaded
    w.model_bar.show_loaded(w.model_info)


def test_the_default_size_fits_the_screen(qtbot, smollm2_path):
    w = MainWindow(str(smollm2_path), n_ctx=512)
    qtbot.addWidget(w)
    free = w.screen().availableGeometry()     # 800 x 800 on the offscreen platform
    assert w.width() <= free.width() and w.height() <= free.height()
    win = w.open_model_manager()
    assert win.width() <= free.width() and win.height() <= free.height()
    win.close()
    w.close()


def test_the_model_picker_shows_the_whole_name_and_tooltips_say_the_rest(qtbot, make_window):
    w = make_window()
    w.resize(1100, 740)
    QApplication.processEvents()
    picker = w.model_bar.picker
    name = picker.currentText()
    assert name == "SmolLM2-135M-Instruct.Q4_1"
    assert picker.width() >= picker.fontMetrics().horizontalAdvance(name) + 20
    assert name in picker.toolTip() and str(w.model_info.path) in picker.toolTip()
    plan = w.model_bar.gpu_plan
    assert plan.text() == w.model_info.gpu_plan and plan.toolTip() == plan.text()


def test_the_context_meter_counts_as_soon_as_a_model_is_loaded(qtbot, make_window):
    w = make_window()
    assert w.session.conversation_id is None
    qtbot.waitUntil(lambda: "/ 2,048 tokens" in w.context_meter.label.text(), timeout=10000)
    assert "no model" not in w.context_meter.label.text()


def test_the_context_meter_forgets_a_deleted_chat(qtbot, make_window):
    w = make_window()
    conv = w.store.create("Long")
    w.store.add_user_message(conv, "Tell me about the sea and the sky. " * 40)
    with qtbot.waitSignal(w.context_updated, timeout=20000) as full:
        w.session.open(conv)
    with qtbot.waitSignal(w.context_updated, timeout=20000) as after:
        w.delete_chat(conv)
    assert after.args[0].used < full.args[0].used / 4
    assert f"{after.args[0].used:,} / 2,048 tokens" in w.context_meter.label.text()


def test_while_editing_the_meter_counts_the_new_text_in_place_of_the_old(qtbot, make_window):
    w = make_window()
    question = "Tell me about the sea and the sky in three long sentences, please."
    conv = w.store.create("Sea")
    user_id = w.store.add_user_message(conv, question)
    reply = w.store.start_reply(conv)
    reply.append("The sea is wide and the sky is blue. " * 6)
    reply.finish("complete")
    with qtbot.waitSignal(w.context_updated, timeout=20000) as whole:
        w.session.open(conv)
    with qtbot.waitSignal(w.context_updated, timeout=20000) as editing:
        w.chat_view.run_link(f"edit:{user_id}")
    assert w.composer.toPlainText() == question
    # a new chat with the same draft counts the same: the old message and its reply are out
    w.stop_or_cancel()
    w.new_chat()
    with qtbot.waitSignal(w.context_updated, timeout=20000) as fresh:
        w.composer.setPlainText(question)
    assert editing.args[0].used == fresh.args[0].used < whole.args[0].used


def test_the_last_open_conversation_opens_at_launch(qtbot, make_window):
    w = make_window()
    older = w.store.create("Older")
    w.store.add_user_message(older, "About orchards")
    newer = w.store.create("Newer")
    w.store.add_user_message(newer, "About bananas")
    w.session.open(older)
    w.close()
    w2 = make_window()
    assert w2.session.conversation_id == older
    assert "About orchards" in w2.chat_view.toPlainText()
    assert w2.sidebar.list.currentItem() is not None and "Older" in w2.sidebar.list.currentItem().text()
    w2.delete_chat(older)
    w2.close()
    w3 = make_window()                       # the one remembered is gone: the most recent opens
    assert w3.session.conversation_id == newer


def _indicator_contrast(widget, element) -> int:
    """How far the indicator's most visible pixel is from the background, in lightness."""
    widget.resize(widget.sizeHint())
    image = widget.grab().toImage()
    option = QStyleOptionButton()
    widget.initStyleOption(option)
    rect = widget.style().subElementRect(element, option, widget)
    background = widget.palette().color(widget.backgroundRole()).lightness()
    return max(abs(QColor(image.pixel(x, y)).lightness() - background)
               for x in range(rect.left(), rect.right() + 1) for y in range(rect.top(), rect.bottom() + 1))


def test_radio_buttons_and_check_boxes_show_in_both_themes(qtbot):
    app = QApplication.instance()
    try:
        for name in ("light", "dark"):
            theme.apply(app, name)
            for kind, element in ((QRadioButton, QStyle.SE_RadioButtonIndicator),
                                  (QCheckBox, QStyle.SE_CheckBoxIndicator)):
                button = kind("Option")
                qtbot.addWidget(button)
                assert _indicator_contrast(button, element) >= 50, (name, kind.__name__)
    finally:
        theme.apply(app, "light")


def test_the_servers_table_headers_read_whole(qtbot, make_window):
    w = make_window()
    dialog = w.open_settings()
    dialog.tabs.setCurrentIndex(dialog.tabs.count() - 1)
    dialog.servers.add_row(RemoteServer("Server", "http://127.0.0.1:8080/v1"))
    QApplication.processEvents()
    header = dialog.servers.table.horizontalHeader()
    for col in range(header.count()):
        text = dialog.servers.table.horizontalHeaderItem(col).text()
        assert header.sectionSize(col) >= header.fontMetrics().horizontalAdvance(text) + 8, text
    assert "http://" in dialog.servers.table.horizontalHeaderItem(1).toolTip()
    dialog.close()


def test_the_new_here_banner_shows_until_dismissed(qtbot, make_window):
    w = make_window()
    win = w.open_model_manager()
    banner = win.discover.catalog.suggestion
    assert banner.isVisibleTo(win) and "New here?" in banner.text()
    banner.linkActivated.emit("dismiss")
    assert not banner.isVisibleTo(win)
    win.close()
    assert load_settings().welcome_done
    win = w.open_model_manager()
    assert not win.discover.catalog.suggestion.isVisibleTo(win)
    win.close()


def test_the_new_here_banner_is_gone_after_the_first_chat(qtbot, make_window):
    w = make_window(max_tokens=4)
    assert not load_settings().welcome_done
    send_and_wait(qtbot, w, "Hello!")
    assert load_settings().welcome_done
    win = w.open_model_manager()
    assert not win.discover.catalog.suggestion.isVisibleTo(win)
    win.close()


def test_the_window_starts_when_the_last_conversation_cannot_be_shown(qtbot, make_window, monkeypatch, caplog):
    w = make_window()
    conv = w.store.create("Damaged")
    w.store.add_user_message(conv, "About orchards")
    w.session.open(conv)
    w.close()
    from chat.store import ChatStore

    def broken(self, message_id):
        raise ValueError(f"{message_id} is not in list")   # as a damaged index once answered

    monkeypatch.setattr(ChatStore, "siblings", broken)
    w2 = make_window()
    assert w2.model_ready and w2.session.conversation_id is None
    assert "About orchards" not in w2.chat_view.toPlainText()
    assert "could not open the last conversation" in caplog.text     # in the log file, not a traceback
