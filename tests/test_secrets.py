"""Secrets at rest: API keys and the Hugging Face token go to the keyring, else to a 0600 file.

Never into settings.json, and never into a repr or a log line. A key left in an older
settings file is moved out of it on the next load.
"""
from __future__ import annotations

import json
import logging
import os

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from common import secret_store
from common.paths import data_paths
from common.settings import RemoteServer, Settings, load_settings, save_settings

KEY = "sk-test-7f3a9c1e5b"
TOKEN = "hf_secretTOKEN123456"


class MemoryKeyring(KeyringBackend):
    """A keyring that keeps passwords in a dict (a stand-in for Keychain / Secret Service)."""

    priority = 10

    def __init__(self):
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.items.get((service, username))

    def set_password(self, service, username, password):
        self.items[(service, username)] = password

    def delete_password(self, service, username):
        self.items.pop((service, username), None)


@pytest.fixture
def no_keyring():
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(fail.Keyring())


@pytest.fixture
def memory_keyring():
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(fail.Keyring())


def settings_with_key() -> Settings:
    return Settings(remote_servers=[RemoteServer("vllm", "https://gpu.example/v1", api_key=KEY, model="m")])


def secrets_file():
    return data_paths().config / "secrets.json"


def test_without_a_keyring_keys_go_to_a_file_only_the_user_can_read(no_keyring):
    old = os.umask(0o000)            # even with a umask that would make new files world-readable
    try:
        path = save_settings(settings_with_key())
    finally:
        os.umask(old)
    assert KEY not in path.read_text()
    assert json.loads(secrets_file().read_text()) == {"remote:vllm": KEY}
    assert secrets_file().stat().st_mode & 0o777 == 0o600
    assert load_settings().remote_servers[0].api_key == KEY
    assert sorted(p.name for p in path.parent.iterdir()) == ["secrets.json", "settings.json"]


def test_a_widened_secrets_file_is_narrowed_again(no_keyring):
    secret_store.set_secret("remote:x", KEY)
    os.chmod(secrets_file(), 0o644)
    assert secret_store.get_secret("remote:x") == KEY
    assert secrets_file().stat().st_mode & 0o777 == 0o600


def test_with_a_keyring_nothing_secret_is_written_to_disk(memory_keyring):
    path = save_settings(settings_with_key())
    assert KEY not in path.read_text()
    assert not secrets_file().exists()
    assert memory_keyring.items == {("LlamaDesk", "remote:vllm"): KEY}
    assert load_settings().remote_servers[0].api_key == KEY
    # a removed server's key leaves the keyring with it
    save_settings(Settings())
    assert memory_keyring.items == {}


def test_hf_token_goes_to_the_keyring(memory_keyring):
    from models import auth

    auth.save_token(TOKEN, validate=False)
    assert memory_keyring.items == {("LlamaDesk", "hf-token"): TOKEN}
    assert not secrets_file().exists()
    assert auth.current_token() == TOKEN
    assert auth.forget_token() and auth.current_token() is None


def test_hf_token_without_a_keyring_is_a_0600_file(no_keyring):
    from models import auth

    auth.save_token(TOKEN, validate=False)
    assert secrets_file().stat().st_mode & 0o777 == 0o600
    assert auth.current_token() == TOKEN
    assert TOKEN not in repr(auth.find_token())


@pytest.mark.parametrize("ring", ["none", "memory"])
def test_keys_in_an_old_settings_file_are_moved_out_of_it(ring, request):
    store = request.getfixturevalue("memory_keyring" if ring == "memory" else "no_keyring")
    path = data_paths().settings_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"temperature": 0.3, "remote_servers": [
        {"name": "vllm", "base_url": "https://gpu.example/v1", "api_key": KEY, "model": "m"}]}))
    loaded = load_settings()
    assert loaded.remote_servers[0].api_key == KEY and loaded.params.temperature == 0.3
    assert KEY not in path.read_text()
    assert json.loads(path.read_text())["remote_servers"][0]["name"] == "vllm"
    if ring == "memory":
        assert store.items == {("LlamaDesk", "remote:vllm"): KEY}
    else:
        assert secrets_file().stat().st_mode & 0o777 == 0o600


def test_no_repr_or_log_line_shows_a_key(no_keyring, caplog):
    from engine.remote_backend import RemoteBackend

    caplog.set_level(logging.DEBUG)
    s = settings_with_key()
    save_settings(s)
    load_settings()
    secret_store.set_secret("remote:vllm", KEY)
    assert KEY not in repr(s) and KEY not in str(s) and KEY not in repr(s.remote_servers[0])
    assert KEY not in repr(RemoteBackend("https://gpu.example/v1", api_key=KEY))
    assert KEY not in caplog.text


def test_the_servers_table_masks_the_key(qtbot):
    from PySide6.QtCore import Qt

    from app.settings.servers_editor import KEY_COLUMN, MASK, ServersEditor

    editor = ServersEditor(settings_with_key().remote_servers)
    qtbot.addWidget(editor)
    item = editor.table.item(0, KEY_COLUMN)
    assert item.text() == MASK and KEY not in item.text()
    assert editor.servers()[0].api_key == KEY
    index = editor.table.model().index(0, KEY_COLUMN)
    delegate = editor.table.itemDelegateForColumn(KEY_COLUMN)
    line = delegate.createEditor(editor.table.viewport(), None, index)
    assert line.echoMode() == line.EchoMode.Password
    line.setText("sk-new")
    delegate.setModelData(line, editor.table.model(), index)
    assert editor.table.item(0, KEY_COLUMN).text() == MASK
    assert editor.table.item(0, KEY_COLUMN).data(Qt.UserRole) == "sk-new"
    assert editor.servers()[0].api_key == "sk-new"
