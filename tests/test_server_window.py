"""The window's "Serve on localhost" switch: the window's model answers API calls,
the button counts them, window chat and API share the one model, and it stops."""
from __future__ import annotations

import threading

import httpx
import openai
import pytest

from common.settings import load_settings
from tests.gui_helpers import active_path, send_and_wait

pytestmark = pytest.mark.usefixtures("one_engine_thread")


def _set_port_any(window):
    window.settings.serve_port = 0     # any free port: tests run side by side


def test_switch_serves_the_window_model_and_stops(qtbot, make_window):
    w = make_window(n_ctx=1024)
    switch = w.server_switch
    assert not switch.serving and switch.button.text().startswith("Serve on localhost:")
    _set_port_any(w)
    with qtbot.waitSignal(switch.serving_changed, timeout=10000) as started:
        switch.button.click()
    assert started.args == [True] and switch.button.isChecked()
    url = f"http://127.0.0.1:{switch.port}"
    result = {}

    def call():   # a client in another thread, while the window's event loop keeps running
        with openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120) as c:
            result["models"] = [m.id for m in c.models.list()]
            result["reply"] = c.chat.completions.create(
                model=result["models"][0], messages=[{"role": "user", "content": "Say hi."}],
                max_tokens=6, temperature=0)

    t = threading.Thread(target=call)
    t.start()
    qtbot.waitUntil(lambda: not t.is_alive(), timeout=120000)
    t.join()
    assert result["models"][0] == w.model_info.name
    assert result["reply"].choices[0].message.content
    qtbot.waitUntil(lambda: "· 1 request" in switch.button.text(), timeout=10000)
    assert load_settings().serve_on is True

    with qtbot.waitSignal(switch.serving_changed, timeout=20000) as stopped:
        switch.button.click()
    assert stopped.args == [False] and "Serve on localhost" in switch.button.text()
    assert load_settings().serve_on is False
    try:
        httpx.get(url + "/v1/models", timeout=5)
        refused = False
    except httpx.HTTPError:
        refused = True
    assert refused


def test_window_chat_and_api_requests_share_the_model(qtbot, make_window):
    w = make_window(n_ctx=1024, max_tokens=16)
    _set_port_any(w)
    assert w.server_switch.start()
    url = f"http://127.0.0.1:{w.server_switch.port}"
    replies = []

    def call():
        for i in range(2):
            r = httpx.post(url + "/api/generate", timeout=120, json={
                "model": w.model_info.name, "prompt": f"Count to {i + 3}.", "stream": False,
                "options": {"num_predict": 8, "temperature": 0}})
            replies.append(r)

    t = threading.Thread(target=call)
    t.start()
    # The window chats while API requests queue on the same model; both finish, the window
    # keeps its conversation.
    assert send_and_wait(qtbot, w, "Name a fruit.") in ("eog", "length")
    qtbot.waitUntil(lambda: not t.is_alive(), timeout=120000)
    t.join()
    assert [r.status_code for r in replies] == [200, 200] and all(r.json()["response"] for r in replies)
    assert active_path(w)[-1].content.strip()
    assert send_and_wait(qtbot, w, "And a vegetable?") in ("eog", "length")
    w.close()   # closing while serving stops the server
    assert not w.server_switch.serving


def test_no_model_in_the_window_is_a_503_with_a_sentence(qtbot):
    from app.main_window import MainWindow

    w = MainWindow()               # no model chosen yet
    qtbot.addWidget(w)
    w.show()
    _set_port_any(w)
    assert w.server_switch.start()
    r = httpx.post(f"http://127.0.0.1:{w.server_switch.port}/v1/chat/completions", timeout=30,
                   json={"messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 503 and "No model is loaded" in r.json()["error"]["message"]
    w.close()


def test_settings_dialog_turns_serving_on_and_off(qtbot, make_window):
    w = make_window(n_ctx=1024)
    _set_port_any(w)
    dialog = w.open_settings()
    assert dialog.serve_on.isChecked() is False and dialog.serve_port.value() == 0
    dialog.serve_on.setChecked(True)
    w.apply_settings(dialog.current())
    dialog.close()
    assert w.server_switch.serving and w.server_switch.button.isChecked()
    assert load_settings().serve_on is True
    r = httpx.get(f"http://127.0.0.1:{w.server_switch.port}/api/tags", timeout=30)
    assert r.json()["models"][0]["name"] == w.model_info.name
    from dataclasses import replace

    w.apply_settings(replace(w.settings, serve_on=False))
    assert not w.server_switch.serving and not w.server_switch.button.isChecked()
    assert load_settings().serve_on is False
