"""Write the picture of the window serving its model: a chat in the window while the
openai client asks the same model through "Serving on localhost:7453 · N requests".

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/make_serve_screenshot.py
"""
from __future__ import annotations

import sys
import threading

import shots
from shots import OUT


def main() -> int:
    import openai
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    shots.private_home()
    from app.main_window import MainWindow
    from common.inference_options import LoadOptions
    from common.settings import Settings, save_settings
    from engine.types import GenerationParams
    from models.bundled import bundled_model_path

    def wait(predicate, timeout_s: float = 120.0) -> None:
        shots.wait(app, predicate, timeout_s)

    save_settings(Settings(welcome_done=True, serve_on=True, load=LoadOptions(threads=1)))
    w = MainWindow(str(bundled_model_path()), n_ctx=2048)
    w.resize(980, 620)
    w.show()
    wait(lambda: w.model_ready and w.server_switch.serving)
    w.settings.params = GenerationParams(max_tokens=48, temperature=0.0, seed=1)
    url = f"http://127.0.0.1:{w.server_switch.port}/v1"

    def client():
        with openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=300) as c:
            for question in ("Say hello in French.", "Name three colours."):
                for _ in c.chat.completions.create(model=w.model_info.name, stream=True, max_tokens=24,
                                                   messages=[{"role": "user", "content": question}]):
                    pass

    t = threading.Thread(target=client)
    t.start()
    done = []
    w.reply_completed.connect(done.append)
    w.send("What can a local API server be used for? Answer in two sentences.")
    wait(lambda: done and not t.is_alive(), 300)
    t.join()
    wait(lambda: w.server_switch.requests >= 2, 30)
    path = OUT / "serve-window.png"
    w.grab().save(str(path))
    shots.close(app, w)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
