"""Download an original (safetensors) repo, then convert it to a GGUF with the chosen quant.

The converter is imported only when a conversion runs. The result goes to the
models folder as ``<owner>/<repo>/<repo>-<QUANT>.gguf`` and the library records
its provenance: the repo, the exact commit, the quant and ``origin="converted"``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from common.paths import data_paths
from common.safe_paths import safe_join
from common.task import TaskHandle
from models.fetch import RetryPolicy, check_repo_id, default_free_space
from models.repo_download import download_repo

CHECKPOINT_FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                    "chat_template.jinja", "*.safetensors", "model.safetensors.index.json"]


def converted_path(repo_id: str, qtype: str, models_dir: Optional[Path] = None) -> Path:
    root = Path(models_dir) if models_dir else data_paths().models
    name = check_repo_id(repo_id).split("/")[-1]
    return safe_join(root, f"{repo_id}/{name}-{qtype.upper()}.gguf", "output path")


def download_and_convert(repo_id: str, qtype: str = "q4_k_m", revision: Optional[str] = None, *,
                         models_dir: Optional[Path] = None, token: Optional[str] = None,
                         handle: Optional[TaskHandle] = None,
                         handle_for: Optional[Callable] = None, retry: RetryPolicy = RetryPolicy(),
                         free_space=default_free_space, keep_intermediate: bool = False,
                         replace: bool = True, measure: Optional[Callable] = None):
    """Returns the converter's result; the snapshot stays in the HF cache for reuse.
    ``replace`` False refuses to replace an earlier conversion (``OutputExists``).
    ``measure`` is the converter's quality measurement (``engine.quality.measure_quality``);
    its result is stored with the file (``library.record_quality``)."""
    from converters.pipeline import convert_checkpoint
    from models.library import record_provenance, record_quality

    paths = download_repo(repo_id, CHECKPOINT_FILES, revision, models_dir=models_dir, token=token,
                          retry=retry, free_space=free_space, handle_for=handle_for)
    snapshot = paths["config.json"].parent
    out = converted_path(repo_id, qtype, models_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = convert_checkpoint(snapshot, out, qtype, keep_intermediate=keep_intermediate,
                                handle=handle or TaskHandle(), replace=replace, measure=measure)
    record_provenance(result.path, origin="converted", repo_id=repo_id, revision=snapshot.name,
                      quant=qtype.upper())
    if result.quality is not None:
        record_quality(result.path, result.quality.to_dict())
    return result
