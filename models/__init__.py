"""Models: Hub catalog and search, downloads, the local library, GGUF metadata.

Plain Python (no Qt). The public pieces:

- ``models.catalog``: ``entries()`` -> the curated Llama 3 family (``catalog.json``):
  original repo (gated, convert path), GGUF repos (direct path), parameters, context,
  and per quant an ``Estimate`` (file size, RAM/VRAM need) computed from shapes.
- ``models.hardware``: ``LlamaShape``, ``estimate(shape, qtype, context)``,
  ``fit(estimate, memory)`` -> 'gpu' | 'cpu' | 'tight' | 'no', where ``memory`` is the
  ``MachineMemory`` that ``engine.machine.probe_machine().memory()`` measures.
- ``models.hub``: ``search(query, kind='gguf'|'llama'|None, sort='downloads'|'likes'|'recent')``
  -> ``RepoSummary`` list; ``list_repo(repo_id, revision)`` -> ``RepoListing`` (files with
  sizes and LFS sha256, ``gguf_sets`` grouped by quant and split parts, ``gated``).
- ``models.file_download``: ``download_file(repo_id, filename, handle=TaskHandle)`` -> Path; resumable
  (HTTP Range, partial + sidecar), sha256-verified while streaming, placed atomically,
  retried with an injectable ``RetryPolicy``, disk checked through an injectable
  ``free_space``. Errors: ``HashMismatchError``, ``NotEnoughDiskSpace``, ``DownloadError``.
- ``models.repo_download``: ``plan_download`` / ``download_repo(repo_id, include, revision)``.
- ``models.download_queue.DownloadManager(models_dir, max_parallel=2, on_event=cb)``: ``enqueue``
  -> job ids, ``pause``/``resume``/``cancel``, ``jobs()`` snapshots (bytes, speed, ETA,
  state), ``totals()``, ``wait()``, ``shutdown()``; ``cb`` runs on worker threads.
- ``models.library``: ``scan()`` -> ``LibraryEntry`` list (models folder, HF cache, user
  folders; GGUFs and convertible checkpoints), ``remove(entry)``, ``import_gguf(path)``,
  ``add_folder``, ``record_provenance``.
- ``models.gguf_info.read_gguf_info(path)`` -> ``GGUFInfo`` (with the EOS warning); the
  header itself is read by ``common.gguf_header``, the one GGUF reader.
- ``models.gguf_validate.validate_gguf(path)``; raises ``UnsafeGGUFError`` naming the problem.
  Call it before llama.cpp opens any GGUF that came from outside.
- ``models.auth``: ``find_token()``, ``save_token(token)`` (huggingface_hub's token file),
  ``forget_token()``. ``models.hub_errors``: ``SignInRequired`` (401), ``LicenceNotAccepted``
  (403), ``TokenRejected`` (wrong token), ``RepoNotFound``.
- ``models.convert_chain.download_and_convert(repo_id, qtype)``: original repo -> GGUF,
  provenance recorded. ``models.hub_env``: endpoint, offline mode, cache paths at call time.
"""
