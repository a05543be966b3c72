"""Every number a flag takes is range-checked when the command line is parsed (synth.arguments):
one sentence naming the flag, the accepted range with its unit and the value given; exit code 2;
nothing written, no folder made."""

from pathlib import Path

import pytest

from synth.cli import main

SCORE = str(Path(__file__).parent.parent / "presets" / "scores" / "demo.jsonl")


@pytest.mark.parametrize("argv, sentence", [
    (["render", "warm-pad", SCORE, "-o", "x.wav", "--tail", "nan"], "argument --tail: expected a number in 0..600 s, got 'nan'"),
    (["render", "warm-pad", SCORE, "-o", "x.wav", "--tail", "inf"], "argument --tail: expected a number in 0..600 s, got 'inf'"),
    (["render", "warm-pad", SCORE, "-o", "x.wav", "--tail", "1e9"], "argument --tail: expected a number in 0..600 s, got '1e9'"),
    (["render", "warm-pad", SCORE, "-o", "x.wav", "--tail", "-1"], "argument --tail: expected a number in 0..600 s, got '-1'"),
    (["render", "warm-pad", SCORE, "-o", "x.wav", "--block-size", "0"],
     "argument --block-size: expected an integer in 1..8192 frames, got '0'"),
    (["render", "warm-pad", SCORE, "-o", "x.wav", "--sample-rate", "44.1"],
     "argument --sample-rate: expected an integer in 8000..192000 Hz, got '44.1'"),
    (["serve", "warm-pad", "--osc-port", "99999"], "argument --osc-port: expected an integer in 0..65535, got '99999'"),
    (["play", "warm-pad", "--duration", "-1"], "argument --duration: expected a number in 0.01..86400 s, got '-1'"),
    (["play", "warm-pad", "--latency", "-1"], "argument --latency: expected a number in 0.0005..2 s, got '-1'"),
    (["train", "decoder", "--data", "d", "-o", "m", "--steps", "0"], "argument --steps: expected an integer in 1..10000000 steps, got '0'"),
    (["train", "decoder", "--data", "d", "-o", "m", "--steps", "-5"], "argument --steps: expected an integer in 1..10000000 steps, got '-5'"),
    (["train", "decoder", "--data", "d", "-o", "m", "--batch-size", "0"], "argument --batch-size: expected an integer in 1..4096, got '0'"),
    (["train", "vae", "--data", "d", "--decoder", "m", "-o", "v", "--beta", "-1"], "argument --beta: expected a number in 0..100, got '-1'"),
    (["train", "vae", "--data", "d", "--decoder", "m", "-o", "v", "--free-bits", "-3"],
     "argument --free-bits: expected a number in 0..100 nats, got '-3'"),
    (["speech-corpus", "c", "--minutes", "0"], "argument --minutes: expected a number in 0.1..6000 minutes, got '0'"),
    (["speech-corpus", "c", "--minutes", "-1"], "argument --minutes: expected a number in 0.1..6000 minutes, got '-1'"),
])
def test_an_out_of_range_number_is_one_sentence_and_exit_code_2(argv, sentence, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert sentence in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [
    ["render", "warm-pad", SCORE, "-o", "{missing}/x.wav"],
    ["train", "decoder", "--data", "d", "-o", "{missing}/model"],
    ["analyze", "in.wav", "-o", "{missing}/x.partials.npz"],
    ["latent", "{missing}/x.png"],
])
def test_an_output_in_a_missing_folder_is_refused_and_no_folder_is_made(argv, tmp_path, capsys):
    missing = tmp_path / "no" / "such"
    assert main([a.format(missing=missing) for a in argv]) == 2
    assert f"the folder {str(missing)!r} does not exist (make it first)" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_a_missing_data_set_says_which_command_builds_one(tmp_path, capsys):
    """`train vae --data missing` used to suggest Python function names (build_dataset...)."""
    decoder = Path(__file__).parent.parent / "presets" / "models" / "gm-decoder"
    argv = ["train", "vae", "--data", str(tmp_path / "missing"), "--decoder", str(decoder), "-o", str(tmp_path / "v"),
            "--steps", "1", "--quiet"]
    assert main(argv) == 2
    assert (f"synth: error: {tmp_path / 'missing'}: no such data set folder (`synth train decoder --data FOLDER` builds "
            "one from the soundfont, or from your audio with --wavs YOUR_FOLDER)\n") == capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_version_is_the_package_s(capsys):
    from importlib.metadata import version

    from synth import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"synth-host {__version__}\n"
    assert version("synth-host") == __version__  # pyproject reads it from synth/__init__.py
