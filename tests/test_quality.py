"""Quantization quality (engine.quality): llama.cpp's KL-divergence figures on the tiny checkpoint."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from common.task import Cancelled, TaskHandle
from engine.quality import QualityError, measure_and_record, measure_quality

N_CTX = 64
SCORED = N_CTX - 1 - N_CTX // 2


def _measure(base, other, chunks=4, **kw):
    return measure_quality(base, other, n_ctx=N_CTX, max_chunks=chunks, threads=2, **kw)


@pytest.fixture(scope="module")
def other_model_f16(tmp_path_factory, tiny_tokenizer):
    """The tiny checkpoint's shapes and tokenizer with other random weights: a different model."""
    from tests.fixtures.gguf_fixtures import make_tiny_gguf
    from tests.fixtures.tiny_llama import make_tiny_llama

    root = tmp_path_factory.mktemp("tiny-other-seed")
    ckpt = make_tiny_llama(root / "ckpt", seed=1, tokenizer=tiny_tokenizer)
    return make_tiny_gguf(ckpt.path, root / "other-f16.gguf", "f16")


def test_a_file_against_itself_loses_nothing(tiny_gguf_factory):
    f16 = tiny_gguf_factory("plain", "f16")
    r = _measure(f16, f16)
    assert r.kld == pytest.approx(0, abs=1e-6)
    assert r.same_top == 1.0
    assert r.tokens == 4 * SCORED and r.chunks == 4
    # llama.cpp stores the base's log-probs only down to 16 nats below the top, so a true token
    # the (random) model finds less likely counts as 16 nats there: PPL(base) <= PPL(other).
    assert r.ppl_ratio >= 1
    assert r.rms_dp < 1e-3
    assert (r.base_quant, r.other_quant) == ("F16", "F16")


def test_q4_0_loses_less_than_a_different_model(tiny_gguf_factory, other_model_f16):
    f16, q4 = tiny_gguf_factory("plain", "f16"), tiny_gguf_factory("plain", "q4_0")
    quantized = _measure(f16, q4)
    different = _measure(other_model_f16, q4)
    assert quantized.kld > 1e-5
    assert quantized.kld < different.kld
    assert quantized.same_top > different.same_top
    assert quantized.other_quant == "Q4_0"


def test_the_interval_shrinks_with_more_text(tiny_gguf_factory):
    f16, q4 = tiny_gguf_factory("plain", "f16"), tiny_gguf_factory("plain", "q4_0")
    short = _measure(f16, q4, chunks=2)
    longer = _measure(f16, q4, chunks=8)
    assert longer.tokens == 4 * short.tokens
    assert 0 < longer.kld_ci95 < short.kld_ci95


def test_mismatched_vocabularies_are_refused(tiny_gguf_factory, smollm2_path):
    with pytest.raises(QualityError, match="different vocabularies .* cannot be compared"):
        _measure(tiny_gguf_factory("plain", "f16"), smollm2_path)


def test_a_text_too_short_is_refused(tiny_gguf_factory):
    f16 = tiny_gguf_factory("plain", "f16")
    with pytest.raises(QualityError, match="too short"):
        measure_quality(f16, f16, text="Just a few words.", n_ctx=N_CTX)


@pytest.fixture
def folder(tmp_path):
    """An empty folder of its own (tmp_path also holds the test's LLAMADESK_HOME)."""
    path = tmp_path / "models"
    path.mkdir()
    return path


def test_a_measurement_is_stored_and_described(tiny_gguf_factory, folder):
    from models import library
    from models.quant_quality import describe

    f16 = tiny_gguf_factory("plain", "f16")
    q4 = folder / "tiny-Q4_0.gguf"
    shutil.copyfile(tiny_gguf_factory("plain", "q4_0"), q4)
    library.add_folder(folder)
    measure_and_record(f16, q4, n_ctx=N_CTX, max_chunks=2, threads=2)
    entry = next(e for e in library.scan() if e.path == q4)
    assert entry.quality["other_quant"] == "Q4_0" and entry.quality["tokens"] == 2 * SCORED
    text = describe(entry.quality, entry.info.quant)
    assert text.startswith(f"agrees with the original on {100 * entry.quality['same_top']:.0f}% of next tokens")
    # A file changed since it was measured is not measured any more.
    os.utime(q4, ns=(0, 10**9))
    assert next(e for e in library.scan() if e.path == q4).quality is None


def test_cancel_leaves_the_file_and_the_library_as_before(tiny_gguf_factory, folder):
    from common.paths import data_paths
    from models import library

    f16 = tiny_gguf_factory("plain", "f16")
    q4 = folder / "tiny-Q4_0.gguf"
    shutil.copyfile(tiny_gguf_factory("plain", "q4_0"), q4)
    library.record_provenance(q4, origin="converted", quant="Q4_0")
    index_before = data_paths().library_file.read_bytes()
    file_before = (q4.read_bytes(), q4.stat().st_mtime_ns)
    seen = []

    def on_progress(p):
        seen.append(p.done)
        if p.done >= 3:          # the original's pass is done; cancel in the other's
            handle.cancel()

    handle = TaskHandle(on_progress=on_progress)
    with pytest.raises(Cancelled):
        measure_and_record(f16, q4, n_ctx=N_CTX, max_chunks=2, threads=2, handle=handle)
    assert max(seen) == 3
    assert data_paths().library_file.read_bytes() == index_before
    assert (q4.read_bytes(), q4.stat().st_mtime_ns) == file_before
    assert sorted(p.name for p in folder.iterdir()) == [q4.name]   # no scratch file left


def test_conversion_measures_before_the_file_is_placed(tiny_llama, folder):
    from converters.pipeline import convert_checkpoint

    def measure(base, other, **kw):
        return measure_quality(base, other, n_ctx=N_CTX, max_chunks=2, threads=2, **kw)

    result = convert_checkpoint(tiny_llama.path, folder / "m-Q4_0.gguf", "q4_0", threads=2, measure=measure)
    q = result.quality
    assert q.other_name == "m-Q4_0.gguf" and q.base_quant == "BF16" and q.other_quant == "Q4_0"   # bf16 source: BF16 intermediate
    assert 0 < q.kld < 1 and result.measure_seconds > 0
    assert sorted(p.name for p in folder.iterdir()) == ["m-Q4_0.gguf"]   # the intermediate is gone


def test_a_failed_measurement_keeps_the_verified_file_and_says_why(tiny_llama, folder):
    from converters.pipeline import convert_checkpoint

    def measure(base, other, **kw):   # a real refusal from the measurer: the text is too short
        return measure_quality(base, other, text="Just a few words.", n_ctx=N_CTX, threads=2, **kw)

    result = convert_checkpoint(tiny_llama.path, folder / "m-Q4_0.gguf", "q4_0", threads=2, measure=measure)
    assert result.quality is None and "too short" in result.measure_error
    assert result.verification.ok
    assert sorted(p.name for p in folder.iterdir()) == ["m-Q4_0.gguf"]


def test_cancelling_the_measurement_cancels_the_conversion(tiny_llama, folder):
    from converters.pipeline import convert_checkpoint

    def on_progress(p):
        if p.extra.get("stage") == "measure" and p.done >= 1:
            handle.cancel()

    handle = TaskHandle(on_progress=on_progress)

    def measure(base, other, **kw):
        return measure_quality(base, other, n_ctx=N_CTX, max_chunks=2, threads=2, **kw)

    with pytest.raises(Cancelled):
        convert_checkpoint(tiny_llama.path, folder / "m-Q4_0.gguf", "q4_0", threads=2, measure=measure,
                           handle=handle)
    assert list(folder.iterdir()) == []


def test_quality_command_prints_the_figures(tiny_gguf_factory, tmp_path, capsys):
    from main import main

    f16, q4 = tiny_gguf_factory("plain", "f16"), tiny_gguf_factory("plain", "q4_0")
    assert main(["quality", str(f16), str(q4), "--ctx", str(N_CTX), "--chunks", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tokens"] == 2 * SCORED and data["kld"] > 0 and data["other_quant"] == "Q4_0"
    assert main(["quality", str(f16), str(q4), "--ctx", str(N_CTX), "--chunks", "2"]) == 0
    out = capsys.readouterr().out
    assert "Mean KLD" in out and "Same top token" in out and "agrees with the original on" in out


def test_quality_command_refuses_with_a_sentence(tiny_gguf_factory, smollm2_path, tmp_path, capsys):
    from main import main

    f16 = tiny_gguf_factory("plain", "f16")
    assert main(["quality", str(f16), str(smollm2_path)]) == 1
    err = capsys.readouterr().err
    assert "different vocabularies" in err and "Traceback" not in err
    assert main(["quality", str(f16), str(tmp_path / "absent.gguf")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_convert_command_measures_unless_told_not_to(tiny_llama, folder, capsys):
    from main import main
    from models import library

    out = folder / "tiny-Q4_0.gguf"
    assert main(["convert", str(tiny_llama.path), "--out", str(out), "--type", "q4_0", "--threads", "2",
                 "--no-measure"]) == 0
    assert "quality against" not in capsys.readouterr().out
    library.add_folder(folder)
    assert next(e for e in library.scan() if e.path == out).quality is None
    out.unlink()
    assert main(["convert", str(tiny_llama.path), "--out", str(out), "--type", "q4_0", "--threads", "2"]) == 0
    printed = capsys.readouterr().out
    assert "Mean KLD" in printed and "agrees with the original on" in printed
    entry = next(e for e in library.scan() if e.path == out)
    assert entry.quality["other_name"] == out.name and entry.quality["n_ctx"] == 512


def test_the_words_put_a_measurement_next_to_published_figures():
    from models.quant_quality import describe, format_kld

    q = {"same_top": 0.919, "kld": 0.0313, "base_quant": "F16"}
    assert describe(q, "Q4_K_M") == "agrees with the original on 92% of next tokens (KLD 0.031), typical for Q4_K_M"
    worse = describe({**q, "kld": 0.11, "same_top": 0.85}, "Q4_K_M")
    assert worse == ("agrees with the original on 85% of next tokens (KLD 0.11), more loss than a typical "
                     "Q4_K_M (KLD 0.031 on Llama 3 8B), about what Q3_K_M gives")
    assert describe({**q, "base_quant": "Q8_0", "kld": 0.0014}, "Q6_K").startswith("agrees with Q8_0 on 92%")
    assert describe({**q, "kld": 0.5}, "Q4_0").endswith("about what Q2_K gives on Llama 3 8B")
    assert describe({**q, "kld": 0.0, "same_top": 1.0}, "F16") == \
        "agrees with the original on 100% of next tokens (KLD 0), no measurable loss"
    assert (format_kld(0.00136), format_kld(0.45), format_kld(1.234)) == ("0.0014", "0.45", "1.23")


def test_an_unmeasured_file_finds_the_best_original_of_the_same_model(tmp_path):
    from models.gguf_info import GGUFInfo
    from models.library import LibraryEntry
    from models.quant_quality import find_reference

    def entry(name, quant, params=1000, model="Tiny"):
        info = GGUFInfo("llama", model, params, quant, 1, None, True, None, None, None, True)
        return LibraryEntry(tmp_path / name, "gguf", "models", name, 1, [tmp_path / name], info=info)

    q4, q8, f16 = entry("a-Q4_K_M.gguf", "Q4_K_M"), entry("a-Q8_0.gguf", "Q8_0"), entry("a-F16.gguf", "F16")
    others = [entry("b-F16.gguf", "F16", model="Other"), entry("c-F16.gguf", "F16", params=2000)]
    assert find_reference(q4, [q4, q8, *others]) is q8
    assert find_reference(q4, [q8, f16, q4, *others]) is f16
    assert find_reference(q8, [q8, q4, f16]) is f16
    assert find_reference(q4, [q4, *others]) is None
    assert find_reference(f16, [f16, q8, q4]) is None           # the original has nothing above it
