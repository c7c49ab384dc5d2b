"""The curated catalog: every Llama 3 family member, sizes computed from shapes."""
from __future__ import annotations

from models import catalog
from models.hardware import LlamaShape, MachineMemory, estimate, fit

GB = 1000 ** 3


def test_catalog_lists_the_llama3_family_with_both_paths():
    ids = {e.id for e in catalog.entries()}
    assert ids == {"llama-3-8b-instruct", "llama-3-70b-instruct", "llama-3.1-8b-instruct",
                   "llama-3.1-70b-instruct", "llama-3.2-1b-instruct", "llama-3.2-3b-instruct",
                   "llama-3.3-70b-instruct"}
    for e in catalog.entries():
        assert e.original.startswith("meta-llama/") and e.gguf
        assert set(e.estimates) >= {"q4_k_m", "q8_0", "f16"}
        assert e.estimates["q4_k_m"].file_bytes < e.estimates["q8_0"].file_bytes < e.estimates["f16"].file_bytes


def test_parameter_counts_and_sizes_come_from_shapes():
    # Published: 8.03B params, Q4_K_M 4.92 GB, Q8_0 8.54 GB, F16 16.07 GB; 3.2 1B: 1.24B, Q4_K_M 0.81 GB.
    e8 = catalog.find("llama-3.1-8b-instruct")
    assert round(e8.parameters / 1e9, 2) == 8.03
    for q, published in (("q4_k_m", 4.92), ("q8_0", 8.54), ("f16", 16.07)):
        assert abs(e8.estimates[q].file_bytes / GB - published) / published < 0.02, q
    e1 = catalog.find("llama-3.2-1b-instruct")
    assert round(e1.parameters / 1e9, 2) == 1.24
    assert abs(e1.estimates["q4_k_m"].file_bytes / GB - 0.81) < 0.03
    assert 69 < catalog.find("llama-3.3-70b-instruct").parameters / 1e9 < 71.5


def test_memory_need_grows_with_context_and_fit_hints():
    shape = LlamaShape(4096, 32, 32, 8, 14336, 128256)
    short, long = estimate(shape, "q4_k_m", 4096), estimate(shape, "q4_k_m", 32768)
    assert long.kv_bytes == 8 * short.kv_bytes and short.kv_bytes == 2 * 32 * 1024 * 4096 * 2
    assert fit(short, MachineMemory(16 * GB, None, 24 * GB)) == "gpu"
    assert fit(short, MachineMemory(16 * GB, None, None)) == "cpu"
    assert fit(short, MachineMemory(8 * GB, None, None)) == "tight"
    assert fit(short, MachineMemory(6 * GB, None, None)) == "no"
    assert catalog.find("llama-3.2-1b-instruct").gguf[0].file_for("Q4_K_M") == "Llama-3.2-1B-Instruct-Q4_K_M.gguf"
