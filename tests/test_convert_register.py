"""One convert-and-register for every front end, one output naming rule, and the linked
task handle that lets one cancel stop a chained job."""
from __future__ import annotations

from pathlib import Path

import pytest

from common.task import Cancelled, TaskHandle
from main import main
from models import library
from models.convert_chain import converted_path, folder_converted_path, output_name


def test_one_output_name_for_a_hub_repo_and_a_local_folder(tmp_path):
    assert output_name("Llama-3.2-1B-Instruct", "q4_k_m") == "Llama-3.2-1B-Instruct-Q4_K_M.gguf"
    assert converted_path("meta-llama/Llama-3.2-1B-Instruct", "q4_k_m", tmp_path) == (
        tmp_path / "meta-llama" / "Llama-3.2-1B-Instruct" / "Llama-3.2-1B-Instruct-Q4_K_M.gguf")
    assert folder_converted_path("/data/ckpt/Llama-3.2-1B-Instruct", "q8_0", tmp_path) == (
        tmp_path / "Llama-3.2-1B-Instruct-Q8_0.gguf")


def test_the_terminal_registers_what_it_converts_as_the_window_does(tiny_llama, tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "tiny.gguf"
    assert main(["convert", str(tiny_llama.path), "--out", str(out), "--type", "f16", "--no-measure"]) == 0
    capsys.readouterr()
    record = library.load_index()["provenance"][str(out.resolve())]
    assert record == {"origin": "converted", "quant": "F16", "source_path": str(Path(tiny_llama.path).resolve())}


def test_a_linked_handle_reports_on_its_own_and_cancels_with_its_job():
    job_reports, step_reports = [], []
    job = TaskHandle(on_progress=job_reports.append)
    step = job.linked(step_reports.append)
    step.progress(5, 10, unit="B")
    assert [p.done for p in step_reports] == [5] and job_reports == [] and job.last is None
    assert not step.cancelled
    job.cancel()                                   # the job's cancel stops the step
    assert step.cancelled
    with pytest.raises(Cancelled):
        step.check()

    job2 = TaskHandle()
    step2 = job2.linked()                          # no progress of its own to report
    step2.progress(1, 2)
    step2.cancel()                                 # and the step's cancel stops the job
    assert job2.cancelled
    with pytest.raises(Cancelled):
        job2.check()
