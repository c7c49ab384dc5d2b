"""The remote-server option: pick a server in the model bar and get a streamed reply in the window."""
from __future__ import annotations

from app.main_window import MainWindow
from common.inference_options import LoadOptions
from common.settings import RemoteServer, Settings, save_settings
from engine.types import GenerationParams
from models.choices import remote_ref
from tests.gui_helpers import send_and_wait


def test_pick_a_remote_server_and_stream_a_reply(qtbot, llama_server, smollm2_path):
    save_settings(Settings(load=LoadOptions(threads=1), remote_servers=[RemoteServer("Loopback", llama_server + "/v1")]))
    w = MainWindow(str(smollm2_path), n_ctx=1024)
    qtbot.addWidget(w)
    w.show()
    try:
        qtbot.waitUntil(lambda: w.model_ready, timeout=60000)
        picker = w.model_bar.picker
        index = picker.findData(remote_ref("Loopback"))
        assert index >= 0 and picker.itemText(index) == "Loopback (remote server)"
        with qtbot.waitSignal(w.worker.model_loaded, timeout=60000) as loaded:
            picker.setCurrentIndex(index)
        info = loaded.args[0]
        assert info.remote and info.name == "smollm2" and w.model_ready
        assert w.model_bar.gpu_plan.text() == f"runs on the remote server {llama_server[len('http://'):]}"
        w.settings.params = GenerationParams(max_tokens=16, temperature=0.0, seed=1)
        pieces = []
        w.worker.token_received.connect(pieces.append)
        assert send_and_wait(qtbot, w, "Say hello.") in ("eog", "length")
        (user, reply) = w.store.active_path(w.session.conversation_id)
        assert user.content == "Say hello." and reply.content.strip()
        assert len(pieces) > 1 and "".join(pieces) == reply.content   # streamed, piece by piece
        assert reply.content.strip()[:20] in w.chat_view.toPlainText()
        assert w.settings.active_model == remote_ref("Loopback")
    finally:
        w.close()
