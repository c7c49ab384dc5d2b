"""Converting a checkpoint into the library: where the GGUF goes, and the one
convert-and-register every front end runs (the window's Convert tab, ``convert`` and
``download --convert``).

The output name is always ``<checkpoint name>-<QUANT>.gguf`` (``output_name``): for a
Hub repo ``<owner>/<repo>`` it goes to ``<models>/<owner>/<repo>/<repo>-<QUANT>.gguf``,
for a local checkpoint folder to ``<models>/<folder name>-<QUANT>.gguf``. The converter
is imported only when a conversion runs. The library records each result's provenance
(``origin="converted"`` and the repo and exact commit, or the source folder) and its
measured quality.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from common.paths import data_paths
from common.safe_paths import safe_join
from common.task import TaskHandle
from models.file_download import RetryPolicy, check_repo_id, default_free_space
from models.repo_download import download_repo

CHECKPOINT_FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                    "chat_template.jinja", "*.safetensors", "model.safetensors.index.json"]


def output_name(checkpoint_name: str, qtype: str) -> str:
    """The converted file's name: ``<checkpoint name>-<QUANT>.gguf``."""
    return f"{checkpoint_name}-{qtype.upper()}.gguf"


def converted_path(repo_id: str, qtype: str, models_dir: Optional[Path] = None) -> Path:
    """Where a Hub repo's conversion goes: ``<models>/<owner>/<repo>/<repo>-<QUANT>.gguf``."""
    root = Path(models_dir) if models_dir else data_paths().models
    name = check_repo_id(repo_id).split("/")[-1]
    return safe_join(root, f"{repo_id}/{output_name(name, qtype)}", "output path")


def folder_converted_path(src_dir, qtype: str, models_dir: Optional[Path] = None) -> Path:
    """Where a local checkpoint folder's conversion goes: ``<models>/<folder name>-<QUANT>.gguf``."""
    root = Path(models_dir) if models_dir else data_paths().models
    return root / output_name(Path(src_dir).name, qtype)


def convert_and_register(src_dir, out, qtype: str, *, repo_id: Optional[str] = None,
                         revision: Optional[str] = None, handle: Optional[TaskHandle] = None,
                         replace: bool = True, make_folder: bool = True, keep_intermediate: bool = False,
                         threads: Optional[int] = None, measure: Optional[Callable] = None):
    """Convert ``src_dir`` to a verified GGUF at ``out`` and record it in the library.

    Provenance: ``repo_id`` and ``revision`` for a Hub snapshot, else the source folder.
    ``replace`` False refuses an existing ``out`` (``converters.errors.OutputExists``);
    ``make_folder`` False refuses a missing output folder. ``measure`` is the quality
    measurement (``engine.quality.measure_quality``); its result is stored with the file.
    Returns the converter's ``ConversionResult``.
    """
    from converters.pipeline import convert_checkpoint
    from models.library import record_provenance, record_quality

    result = convert_checkpoint(src_dir, out, qtype, keep_intermediate=keep_intermediate, threads=threads,
                                handle=handle or TaskHandle(), replace=replace, make_folder=make_folder,
                                measure=measure)
    origin = ({"repo_id": repo_id, "revision": revision} if repo_id
              else {"source_path": str(Path(src_dir).resolve())})
    record_provenance(result.path, origin="converted", quant=qtype.upper(), **origin)
    if result.quality is not None:
        record_quality(result.path, result.quality.to_dict())
    return result


def download_and_convert(repo_id: str, qtype: str = "q4_k_m", revision: Optional[str] = None, *,
                         models_dir: Optional[Path] = None, token: Optional[str] = None,
                         handle: Optional[TaskHandle] = None,
                         handle_for: Optional[Callable] = None, retry: RetryPolicy = RetryPolicy(),
                         free_space=default_free_space, keep_intermediate: bool = False,
                         replace: bool = True, measure: Optional[Callable] = None):
    """Download the original checkpoint (into the HF cache, kept for reuse), then
    ``convert_and_register`` it to ``converted_path``. Returns the converter's result."""
    paths = download_repo(repo_id, CHECKPOINT_FILES, revision, models_dir=models_dir, token=token,
                          retry=retry, free_space=free_space, handle_for=handle_for)
    snapshot = paths["config.json"].parent
    out = converted_path(repo_id, qtype, models_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    return convert_and_register(snapshot, out, qtype, repo_id=repo_id, revision=snapshot.name, handle=handle,
                                replace=replace, keep_intermediate=keep_intermediate, measure=measure)
