"""Search and browse against the Hub stand-in, through the real huggingface_hub client."""
from __future__ import annotations

import pytest

from models import hub, hub_env
from tests.fixtures.hub_server import GATED_REPO, GGUF_MAIN, GGUF_REPO, OPEN_REPO


def test_search_filters_and_sorts(hub_server):
    by_downloads = [r.repo_id for r in hub.search("llama")]
    assert by_downloads == [GGUF_REPO, GATED_REPO, OPEN_REPO]
    assert [r.repo_id for r in hub.search("llama", sort="likes")][0] == OPEN_REPO
    assert [r.repo_id for r in hub.search("llama", sort="recent")][0] == OPEN_REPO
    ggufs = hub.search("llama", kind="gguf")
    assert [r.repo_id for r in ggufs] == [GGUF_REPO] and ggufs[0].kind == "gguf"
    checkpoints = hub.search("", kind="llama")
    assert {r.repo_id for r in checkpoints} == {GATED_REPO, OPEN_REPO}
    assert {r.repo_id: r.gated for r in checkpoints} == {GATED_REPO: True, OPEN_REPO: False}


def test_listing_groups_gguf_files_by_quant_and_parts(hub_server):
    listing = hub.list_repo(GGUF_REPO)
    assert not listing.gated and listing.revision == hub_server.state.repos[GGUF_REPO].sha
    main = listing.file(GGUF_MAIN)
    assert main.size == len(hub_server.state.repos[GGUF_REPO].files[GGUF_MAIN]) and len(main.sha256) == 64
    sets = {s.quant: s for s in listing.gguf_sets}
    assert set(sets) == {"Q4_K_M", "Q8_0", "F16"}
    assert sets["F16"].files[0].endswith("-00001-of-00002.gguf") and len(sets["F16"].files) == 2
    assert sets["F16"].complete and sets["F16"].size == 5004
    assert listing.file("README.md").sha256 is None


def test_gated_repo_metadata_is_public_and_flagged(hub_server):
    listing = hub.list_repo(GATED_REPO)
    assert listing.gated and listing.is_convertible_checkpoint
    assert any(f.path.endswith(".safetensors") and f.sha256 for f in listing.files)


def test_offline_mode_never_contacts_the_hub(hub_server, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub_env.OfflineError, match="HF_HUB_OFFLINE"):
        hub.search("llama")
    with pytest.raises(hub_env.OfflineError):
        hub.list_repo(GGUF_REPO)
    assert hub_server.requests == []
