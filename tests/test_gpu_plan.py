"""The GPU offload planner's arithmetic, on synthetic models and devices."""
from __future__ import annotations

from engine.machine import DeviceInfo, Machine, detect_device, probe_machine
from models.hardware import MachineMemory
from engine.gpu_plan import GIB, ModelSizes, compute_reserve, model_sizes_from_gguf, plan_offload, usage_for


def llama3_8b_q4_k_m() -> ModelSizes:
    """Llama 3 8B at Q4_K_M: ~4.58 GiB; 32 blocks of ~128 MiB, head ~0.4 GiB, embedding ~0.27 GiB."""
    return ModelSizes(n_layer=32, layer_bytes=(128 * 1024 ** 2,) * 32, output_bytes=int(0.41 * GIB),
                      embd_bytes=int(0.27 * GIB), n_head_kv=8, head_dim_k=128, head_dim_v=128,
                      n_vocab=128256, n_ctx_train=8192)


def device(name: str, total_gib: float, free_gib: float) -> DeviceInfo:
    return DeviceInfo("cuda", name, int(total_gib * GIB), int(free_gib * GIB))


def test_kv_cache_size_for_8k_context():
    # 32 layers x 8192 positions x 8 KV heads x (128 + 128) x 2 bytes = 1 GiB
    assert llama3_8b_q4_k_m().kv_bytes_per_layer(8192) * 32 == GIB


def test_everything_fits_on_a_12_gb_card():
    plan = plan_offload(llama3_8b_q4_k_m(), device("NVIDIA GeForce RTX 4070", 12, 11.5), 8192)
    assert plan.gpu_layers == 33 == plan.total_layers
    assert plan.text == "all 33 layers on NVIDIA GeForce RTX 4070 (12 GB): weights 4.4 GB, cache 1.0 GB"


def test_a_4_gb_card_takes_part_of_the_model_and_says_why():
    sizes = llama3_8b_q4_k_m()
    dev = device("NVIDIA GeForce GTX 1650", 4, 3.6)
    plan = plan_offload(sizes, dev, 8192)
    assert 0 < plan.gpu_layers < 33
    w, c = usage_for(sizes, plan.gpu_layers, 8192)
    budget = dev.free_bytes - compute_reserve(sizes) - 0.05 * dev.total_bytes
    assert w + c <= budget < sum(usage_for(sizes, plan.gpu_layers + 1, 8192))
    assert plan.text.startswith(f"{plan.gpu_layers} of 33 layers on NVIDIA GeForce GTX 1650 (4 GB)")
    assert f"the other {33 - plan.gpu_layers} run on the CPU" in plan.text


def test_a_smaller_window_lets_more_layers_fit():
    sizes, dev = llama3_8b_q4_k_m(), device("GPU", 4, 3.6)
    assert plan_offload(sizes, dev, 2048).gpu_layers > plan_offload(sizes, dev, 8192).gpu_layers


def test_cpu_only_build_and_full_card():
    sizes = llama3_8b_q4_k_m()
    assert plan_offload(sizes, DeviceInfo("cpu", "Intel Xeon"), 8192).text == \
        "CPU only: this llama.cpp build has no GPU support."
    busy = plan_offload(sizes, device("NVIDIA T4", 16, 0.5), 8192)
    assert busy.gpu_layers == 0 and busy.text == "CPU only: NVIDIA T4 (16 GB) has 0.5 GB free, not enough for one layer."


def test_manual_override_is_kept_and_labelled():
    plan = plan_offload(llama3_8b_q4_k_m(), device("NVIDIA GeForce RTX 4070", 12, 11.5), 8192, manual=10)
    assert plan.gpu_layers == 10 and plan.manual
    assert plan.text.startswith("10 of 33 layers on NVIDIA GeForce RTX 4070 (12 GB) (set by hand)")
    assert plan_offload(llama3_8b_q4_k_m(), device("X", 12, 11), 8192, manual=-1).gpu_layers == 33


def test_70b_on_a_24_gb_card():
    seventy = ModelSizes(80, (int(0.5 * GIB),) * 80, int(0.8 * GIB), int(0.5 * GIB), 8, 128, 128, 128256)
    plan = plan_offload(seventy, device("NVIDIA GeForce RTX 4090", 24, 23.0), 8192)
    assert 30 < plan.gpu_layers < 45
    assert "of 81 layers" in plan.text


def test_sizes_read_from_a_real_gguf(smollm2_path):
    sizes = model_sizes_from_gguf(smollm2_path)
    assert sizes.n_layer == 30 and sizes.n_head_kv == 3 and sizes.n_vocab == 49152
    assert all(b > 0 for b in sizes.layer_bytes)
    total = sum(sizes.layer_bytes) + sizes.embd_bytes + sizes.output_bytes
    assert 0.95 < total / smollm2_path.stat().st_size < 1.35  # tied head counted twice
    assert detect_device() is not None


def test_one_probe_serves_the_planner_and_the_catalog_hint():
    machine = probe_machine()
    assert machine.ram_total > 0 and machine.device.kind == detect_device().kind
    if machine.device.kind == "cpu":   # a CPU-only build: VRAM does not count for the "fits" hint
        assert machine.gpu is None and machine.memory().vram_total is None
        assert machine.description.endswith("RAM, no GPU offload")
    card = Machine(16 * GIB, 12 * GIB, device("NVIDIA GeForce RTX 4090", 24, 23.0))
    assert card.memory() == MachineMemory(16 * GIB, 12 * GIB, 24 * GIB)
    assert card.description == "17.2 GB RAM, NVIDIA GeForce RTX 4090 (25.8 GB)"
    no_info = Machine(16 * GIB, None, None)
    assert no_info.gpu is None and no_info.memory().vram_total is None
