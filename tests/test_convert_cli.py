"""`python main.py convert`: exit codes, verification report, one-sentence errors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gguf

from main import main

ROOT = Path(__file__).resolve().parents[1]


def test_convert_command_writes_a_verified_file(tiny_llama, tmp_path, capsys):
    tmp_path = tmp_path / "out"     # beside the test's data folder, which the CLI's log lives in
    tmp_path.mkdir()
    out = tmp_path / "tiny.gguf"
    rc = main(["convert", str(tiny_llama.path), "--out", str(out), "--type", "q4_0", "--threads", "2"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    for check in ("loads", "end_of_generation", "chat_template", "tokenizer_parity", "evaluates"):
        assert f"[  ok] {check}" in captured.out
    assert f"wrote {out}" in captured.out and "Q4_0" in captured.out
    assert "quantizing" in captured.err and "converting" in captured.err  # the progress bar
    assert gguf.GGUFReader(out).fields["general.file_type"].contents() == int(gguf.LlamaFileType.MOSTLY_Q4_0)
    assert "quality against the BF16 original" in captured.out and "agrees with the original on" in captured.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.gguf"]


def test_keep_intermediate_flag(tiny_llama, tmp_path, capsys):
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    out = tmp_path / "tiny.gguf"
    rc = main(["convert", str(tiny_llama.path), "--out", str(out), "--type", "q8_0",
               "--keep-intermediate", "--threads", "2"])
    assert rc == 0
    assert "kept intermediate" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.bf16.gguf", "tiny.gguf"]


def test_expected_failure_is_one_sentence_without_traceback(tmp_path):
    src = tmp_path / "empty-model"
    src.mkdir()
    proc = subprocess.run([sys.executable, "main.py", "convert", str(src), "--out", str(tmp_path / "x.gguf")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "config.json" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.gguf").exists()


def test_unknown_type_is_rejected_by_the_parser(tiny_llama, tmp_path, capsys):
    try:
        main(["convert", str(tiny_llama.path), "--out", str(tmp_path / "x.gguf"), "--type", "q2_k"])
    except SystemExit as e:
        assert e.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_output_is_progress_and_the_report_only(tiny_llama, tmp_path):
    """No llama.cpp log line reaches the terminal, and quantizing counts tensors to the end."""
    out = tmp_path / "tiny.gguf"
    proc = subprocess.run([sys.executable, "main.py", "convert", str(tiny_llama.path), "--out", str(out),
                           "--type", "q4_k_m", "--threads", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.splitlines()
    assert err and all(line.split()[0] in ("converting", "quantizing", "verifying", "measuring") for line in err), err
    n = len(gguf.GGUFReader(out).tensors)
    quantizing = [line for line in err if line.startswith("quantizing")]
    assert f" 0/{n} tensors" in quantizing[0] and f" {n}/{n} tensors" in quantizing[-1]
    report = proc.stdout.splitlines()
    wrote = next(i for i, line in enumerate(report) if line.startswith(f"wrote {out}"))
    assert report[0] == "verification:" and all(line.startswith("  [") for line in report[1:wrote]), report
    quality = report[wrote + 1:]          # the measurement against the original
    assert quality[0].startswith("quality against the BF16 original") and quality[-1].startswith("agrees with")
    assert all(line.startswith("  ") for line in quality[1:-1]), report


def test_out_is_never_replaced_or_invented_silently(tiny_llama, tmp_path, capsys):
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    src = str(tiny_llama.path)
    out = tmp_path / "tiny.gguf"
    out.write_bytes(b"an earlier model")
    assert main(["convert", src, "--out", str(out), "--type", "f16"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {out} already exists; add --force to replace it.")
    assert out.read_bytes() == b"an earlier model"

    missing = tmp_path / "no" / "such" / "folder" / "tiny.gguf"
    assert main(["convert", src, "--out", str(missing), "--type", "f16"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: The folder {missing.parent} does not exist: create it first, or choose another.")
    assert not (tmp_path / "no").exists()

    for name, suggestion in (("tiny", "tiny.gguf"), ("tiny.bin", "tiny.gguf")):
        assert main(["convert", src, "--out", str(tmp_path / name), "--type", "f16"]) == 1
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"error: The output's name must end in .gguf ({name} does not): for example {suggestion}.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.gguf"]

    assert main(["convert", src, "--out", str(out), "--type", "f16", "--force"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert gguf.GGUFReader(out).fields["general.file_type"].contents() == int(gguf.LlamaFileType.MOSTLY_F16)
