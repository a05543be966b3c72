"""The `synth` command: argument parsing only; the work happens in the modules it calls."""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from pathlib import Path

from synth import __version__
from synth.arguments import number, output_path
from synth.errors import SynthError, SynthWarning
from synth.limits import MAX_BLOCK, MAX_SAMPLE_RATE, MAX_TAIL_S, MIN_BLOCK, MIN_SAMPLE_RATE

DEMO_PRESET = "warm-pad"
DEMO_SCORE = Path(__file__).resolve().parent.parent / "presets" / "scores" / "demo.jsonl"


def _render(args: argparse.Namespace) -> int:
    from synth.presets import load_preset
    from synth.render import render_file

    out = Path(args.output)
    summary = render_file(load_preset(args.preset), args.score, out, sample_rate=args.sample_rate,
                          fmt=args.format, tail_s=args.tail, block_size=args.block_size,
                          channels=args.channels, progress=not args.quiet, normalize_lufs=args.normalize,
                          skip_unknown=args.skip_unknown)
    print("\n".join(summary.lines()))
    return 0


def _batch(args: argparse.Namespace) -> int:
    from synth.batch import run_batch

    result = run_batch(args.jobs, args.output, workers=args.workers, address=args.address, inputs=args.inputs,
                       progress=not args.quiet)
    print("\n".join(result.lines()))
    return 1 if result.failed else 0


def _demo(args: argparse.Namespace) -> int:
    from synth.io.playback import play_file
    from synth.presets import load_preset
    from synth.render import render_file

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = render_file(load_preset(args.preset), DEMO_SCORE, out)
    print("\n".join(summary.lines()))
    print(f"demo file: {out.resolve()}")
    if not args.no_play:
        print(play_file(out))
    return 0


def _play(args: argparse.Namespace) -> int:
    from synth.live import play

    osc = None
    if args.command == "serve":
        allow = frozenset(args.allow) if args.allow else None
        osc = {"port": args.osc_port, "bind": args.osc_host, "allow": allow}
        if args.osc_tcp:
            osc["framing"] = args.osc_tcp_framing
    midi = {"port": args.midi, "api": args.midi_api} if args.midi else None
    return play(args.preset, args.score, device=args.device, sample_rate=args.sample_rate,
                block_size=args.block_size, latency=args.latency, channels=args.channels,
                duration_s=args.duration, tail_s=args.tail, capture=args.capture,
                input_channels=args.input_channels, osc=osc, record=args.record, midi=midi,
                transfer_input=args.input)


def _devices(args: argparse.Namespace) -> int:
    from synth.io.stream import list_devices

    devices = list_devices()
    if not devices:
        print("no audio devices (start a sound server, or JACK: jackd -d dummy)")
    for d in devices:
        print(f"{d['index']:3d}  {d['name'][:32]:32}  {d['hostapi'][:26]:26}  in {d['inputs']:2d}  out {d['outputs']:2d}  "
              f"{d['default_rate']:.0f} Hz")
    return 0


def _presets(args: argparse.Namespace) -> int:
    from synth.presets import list_presets, load_preset

    for name in list_presets():
        spec = load_preset(name)
        print(f"{name:16} {spec.description}")
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from synth.plugins import available, discover

    if args.lv2 is not None:
        from synth.lv2.listing import describe_lines, summary_lines

        for line in describe_lines(args.lv2) if args.lv2 else summary_lines():
            print(line)
        return 0
    for name, cls in sorted(available().items()):
        print(f"{name} ({cls.kind})")
        for spec in cls.param_specs:
            default = spec.display(spec.default_value)
            print(f"  {spec.name:14} {spec.describe():34} default {default!r:8} {spec.doc}")
    for problem in discover():
        print(f"not loaded: {problem}")
    return 0


def _addresses(args: argparse.Namespace) -> int:
    from synth.control.addresses import address_lines
    from synth.presets import load_preset

    for line in address_lines(load_preset(args.preset)):
        print(line)
    return 0


def _convert(args: argparse.Namespace) -> int:
    from synth.presets import load_preset
    from synth.session_midi import convert_file

    preset = load_preset(args.preset) if args.preset else None
    print(convert_file(args.input, args.output, preset).line())
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from synth.analysis_cli import analyze_file

    for line in analyze_file(args.input, args.output, harmonic=args.harmonic, hop_samples=args.hop,
                             max_tracks=args.max_tracks, plot=args.plot, progress=not args.quiet):
        print(line)
    return 0


def _resynth(args: argparse.Namespace) -> int:
    from synth.resynthesis import Transform, resynthesize_file

    if (args.morph_to is None) != (args.morph is None):
        raise SynthError("--morph-to FILE and --morph AMOUNT go together")
    transform = Transform(stretch=args.stretch, transpose_semitones=args.transpose, keep_formants=args.keep_formants,
                          morph=args.morph or 0.0, freeze_position=args.freeze, harmonics_only=args.harmonics_only,
                          odd_even=args.odd_even, tilt_db_per_octave=args.tilt)
    path, seconds = resynthesize_file(args.input, args.output, transform, args.morph_to, args.sines_only, args.format,
                                      progress=not args.quiet)
    print(f"wrote {seconds:.2f} s to {path}")
    return 0


def _train_decoder(args: argparse.Namespace) -> int:
    from models.data import build_dataset, dataset_from_wavs
    from models.train_decoder import TrainSettings, train_decoder

    data = Path(args.data)
    if args.wavs:
        dataset_from_wavs(args.wavs, data, progress=not args.quiet)
    elif (data / "metadata.csv").exists():
        pass  # a speech corpus (LJSpeech layout): trains a speech decoder on it
    elif args.ddp and (args.build or not (data / "manifest.json").exists()):
        raise SynthError(f"--ddp: build the data set first (synth train decoder --data {data} --build ...), not in "
                         f"each of the processes torchrun starts")
    elif args.build or not (data / "manifest.json").exists():
        options = {"instruments": args.instruments} if args.instruments else {}
        build_dataset(data, soundfont=args.soundfont, progress=not args.quiet, workers=args.workers, **options)
    settings = TrainSettings(steps=args.steps, batch_size=args.batch_size, excerpt_frames=args.excerpt_frames,
                             learning_rate=args.learning_rate, latent_dims=args.latent_dims, hidden=args.hidden,
                             **_training_settings(args))
    summary = train_decoder(data, args.output, settings, resume=args.resume, progress=not args.quiet, ddp=args.ddp)
    if summary["rank"]:
        return 0  # rank 0 reports
    print(f"trained {summary['steps']} steps in {summary['seconds']:.0f} s: train loss {summary['train_loss']:.3f}, "
          f"held-out loss {summary['held_out_loss']:.3f}")
    print(f"model: {Path(args.output).with_suffix('.json')} (+ .safetensors)")
    return 0


def _train_vae(args: argparse.Namespace) -> int:
    from models.train_vae import VaeTrainSettings, train_vae

    settings = VaeTrainSettings(steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
                                beta=args.beta, warmup_steps=args.warmup_steps, free_bits=args.free_bits,
                                **_training_settings(args))
    summary = train_vae(args.data, Path(args.decoder).with_suffix(""), args.output, settings, resume=args.resume,
                        progress=not args.quiet, ddp=args.ddp)
    if summary["rank"]:
        return 0  # rank 0 reports
    print(f"trained {summary['steps']} steps in {summary['seconds']:.0f} s: held-out STFT loss "
          f"{summary['held_out_stft_encoded']:.3f} with encoded z, {summary['held_out_stft_mean_z']:.3f} with the "
          f"training mean z; KL per dimension (nats) {' '.join(f'{x:.2f}' for x in summary['kl_per_dim'])}")
    print(f"timbre model: {Path(args.output).with_suffix('.json')}; decoder: {args.output}-decoder.json")
    return 0


def _train_text_to_mel(args: argparse.Namespace) -> int:
    from models.train_text_to_mel import TtsTrainSettings, train_text_to_mel

    settings = TtsTrainSettings(steps=args.steps, align_steps=args.align_steps, batch_size=args.batch_size,
                                learning_rate=args.learning_rate, token_mode=args.tokens, **_training_settings(args))
    summary = train_text_to_mel(args.corpus, args.output, settings, resume=args.resume, progress=not args.quiet,
                                ddp=args.ddp)
    if summary["rank"]:
        return 0  # rank 0 reports
    held = summary["held_out"]
    print(f"trained {summary['steps']} steps in {summary['seconds']:.0f} s on {summary['train_utterances']} "
          f"utterances ({summary['held_out_utterances']} held out): held-out mel L1 {held['mel']:.3f}, "
          f"log-duration error {held['duration']:.3f}; aligner loss {summary['alignment_loss']:.3f}")
    print(f"model: {Path(args.output).with_suffix('.json')} (+ .safetensors)")
    return 0


def _speech_corpus(args: argparse.Namespace) -> int:
    from models.speech_data import build_speech_corpus

    voice = {"voice": args.voice} if args.voice else {}
    folder = build_speech_corpus(args.output, args.minutes, pitch=tuple(args.pitch), seed=args.seed,
                                 variants=tuple(args.variants), workers=args.workers, **voice)
    print(f"corpus: {folder} ({(folder / 'corpus.json').read_text().strip()})")
    return 0


def _say(args: argparse.Namespace) -> int:
    from synth.speech import speak_file

    path, seconds = speak_file(args.text, args.output, rate=args.rate, pitch_semitones=args.pitch,
                               preset=args.preset, fmt=args.format, progress=not args.quiet)
    print(f"wrote {seconds:.2f} s to {path}")
    return 0


def _sing(args: argparse.Namespace) -> int:
    from synth.speech import sing_file

    path, seconds = sing_file(args.text, args.melody, args.output, preset=args.preset, fmt=args.format,
                              progress=not args.quiet)
    print(f"wrote {seconds:.2f} s to {path}")
    return 0


def _latent(args: argparse.Namespace) -> int:
    from synth.latent import DEFAULT_TIMBRE_MODEL, plot_latent

    print(f"wrote {plot_latent(args.output, args.model or DEFAULT_TIMBRE_MODEL)}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from synth.latent import DEFAULT_TIMBRE_MODEL, encode_file

    for line in encode_file(args.input, args.model or DEFAULT_TIMBRE_MODEL):
        print(line)
    return 0


def _transfer(args: argparse.Namespace) -> int:
    from synth.transfer import transfer_file

    path, seconds = transfer_file(args.input, args.preset, args.output, instrument=args.instrument,
                                  pitch_shift_semitones=args.pitch_shift, loudness_offset_db=args.loudness_offset,
                                  fmt=args.format, progress=not args.quiet)
    print(f"wrote {seconds:.2f} s to {path}")
    return 0


def _training_settings(args: argparse.Namespace) -> dict:
    """The settings every trainer takes from `_training_options` (--checkpoint-every only when
    given: each trainer has its own default)."""
    given = {"checkpoint_every": args.checkpoint_every} if args.checkpoint_every else {}
    return {"device": args.device, "threads": args.threads, "seed": args.seed, **given}


def _training_options(parser: argparse.ArgumentParser) -> None:
    """The options every `synth train` command takes: --device, --threads, --seed, --checkpoint-every,
    --resume, --ddp, --quiet."""
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=number(0, 1024, "threads", integer=True), default=0, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=number(0, 2**32 - 1, integer=True), default=0)
    parser.add_argument("--checkpoint-every", type=number(1, 10_000_000, "steps", integer=True), metavar="STEPS",
                        help="steps between checkpoints (default 250; vae 200); one is also written at the last "
                             "step, and at the last completed step on Ctrl-C or SIGTERM")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.add_argument("--ddp", action="store_true",
                        help="this is one of the processes torchrun starts: train distributed data-parallel (README)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


AUDIO_FORMATS = ("float32", "pcm16", "pcm24", "flac", "ogg")  # synth.io.audiofile.FORMATS, without importing it
FORMAT_HELP = "float32, pcm16 or pcm24 WAV; flac (24-bit FLAC); ogg (Ogg Vorbis); the file name ends to match"
SAMPLE_RATE = number(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE, "Hz", integer=True)
BLOCK_SIZE = number(MIN_BLOCK, MAX_BLOCK, "frames", integer=True)
TAIL = number(0, MAX_TAIL_S, "s")
STEPS = number(1, 10_000_000, "steps", integer=True)
BATCH_SIZE = number(1, 4096, integer=True)
LEARNING_RATE = number(1e-7, 1.0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synth", description="Realtime synthesis engine and plugin host.")
    parser.add_argument("--version", action="version", version=f"synth-host {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    render = commands.add_parser("render", help="render a score (MIDI or JSON Lines) to a WAV file")
    render.add_argument("preset", help="preset name (see `synth presets`) or path to a .toml file")
    render.add_argument("score", help="score: .mid (standard MIDI file) or .jsonl (timed messages)")
    render.add_argument("-o", "--output", required=True, type=output_path, help="output WAV file")
    render.add_argument("--sample-rate", type=SAMPLE_RATE, default=48000, help="Hz (default 48000)")
    render.add_argument("--format", choices=AUDIO_FORMATS, default="float32", help=FORMAT_HELP)
    render.add_argument("--tail", type=TAIL, default=2.0, help="seconds after the last event (default 2)")
    render.add_argument("--block-size", type=BLOCK_SIZE, default=256, help="frames per block (default 256)")
    render.add_argument("--channels", type=int, choices=(1, 2), default=2)
    render.add_argument("--normalize", type=number(-70, 0, "LUFS"), metavar="LUFS",
                        help="scale the render to this integrated loudness (e.g. -14), its true peak kept "
                             "under the -0.3 dBFS ceiling")
    render.add_argument("--skip-unknown", action="store_true",
                        help="leave out score lines at addresses this preset does not have (listed in the summary)")
    render.add_argument("--quiet", action="store_true", help="no progress bar")
    render.set_defaults(run=_render)

    batch = commands.add_parser("batch", help="render every job of a JSON Lines job file on a Ray cluster")
    batch.add_argument("jobs", help="job file: one JSON object a line with preset, score, out "
                                    "(and sample_rate, format, tail, params)")
    batch.add_argument("-o", "--output", required=True, help="folder the outputs and manifest.jsonl go to "
                                                             "(made if missing; its parent must exist)")
    batch.add_argument("--workers", type=number(1, 4096, "workers", integer=True),
                       help="Ray workers (default: one per CPU of this machine, or of the cluster's share)")
    batch.add_argument("--address", metavar="HOST:PORT", help="join this running Ray cluster instead of starting one")
    batch.add_argument("--inputs", help="folder the job file's paths are relative to and stay inside "
                                        "(default: the job file's)")
    batch.add_argument("--quiet", action="store_true", help="no progress bar")
    batch.set_defaults(run=_batch)
    demo = commands.add_parser("demo", help="render the demo score to WAV and play it where a device exists")
    demo.add_argument("--preset", default=DEMO_PRESET)
    demo.add_argument("-o", "--output", default="renders/demo.wav")
    demo.add_argument("--no-play", action="store_true", help="only write the file")
    demo.set_defaults(run=_demo)

    for name, summary in (("play", "play a preset live (a score, or until Ctrl-C)"),
                          ("serve", "play a preset live under OSC control")):
        play = commands.add_parser(name, help=summary)
        play.add_argument("preset", help="preset name or .toml path")
        play.add_argument("score", nargs="?", help="optional score (.mid or .jsonl) to perform")
        play.add_argument("--device", help="audio device name (or part of it) or index; see `synth devices`")
        play.add_argument("--sample-rate", type=SAMPLE_RATE, default=48000, help="Hz (default 48000)")
        play.add_argument("--block-size", type=BLOCK_SIZE, default=256, help="frames per callback (default 256)")
        play.add_argument("--latency", type=number(0.0005, 2, "s"), help="output latency in seconds (default: the device's low)")
        play.add_argument("--channels", type=int, choices=(1, 2), default=2)
        play.add_argument("--duration", type=number(0.01, 86400, "s"), help="seconds to play (default: the score, or until Ctrl-C)")
        play.add_argument("--tail", type=TAIL, default=2.0, help="seconds after the score's last event")
        play.add_argument("--capture", type=output_path, help="also write what was played to this WAV file")
        play.add_argument("--input-channels", type=number(0, 32, "channels", integer=True), default=0,
                          help="live input channels for the preset's audio_input plugin (default 0: none)")
        play.add_argument("--input", action="store_true",
                          help="live timbre transfer: the preset's decoder follows the pitch and loudness of live "
                               "input channel 1 (opens at least one input channel)")
        play.add_argument("--record", type=output_path, help="write every applied event to this JSON Lines session file")
        play.add_argument("--midi", metavar="PORT",
                          help="play from this MIDI input port (name or part of it); 'virtual' opens a port "
                               "called synth-host for other programs to connect to")
        play.add_argument("--midi-api", choices=("auto", "alsa", "jack", "coremidi", "winmm"), default="auto",
                          help="MIDI system for --midi (default auto: the platform's; on Linux ALSA, else JACK)")
        if name == "serve":
            play.add_argument("--osc-port", type=number(0, 65535, integer=True), default=9000, help="UDP port (default 9000; 0 picks one)")
            play.add_argument("--osc-host", default="127.0.0.1",
                              help="interface to listen on (default 127.0.0.1: this machine only)")
            play.add_argument("--allow", action="append", metavar="IP",
                              help="only this client address may control (repeatable)")
            play.add_argument("--osc-tcp", action="store_true",
                              help="also serve OSC over TCP, on the same port number as UDP")
            play.add_argument("--osc-tcp-framing", choices=("size", "slip"), default="size",
                              help="TCP packet framing: size (OSC 1.0 int32 length prefix, default) or slip (OSC 1.1)")
        play.set_defaults(run=_play)

    analyze = commands.add_parser("analyze", help="sinusoidal analysis of a WAV file, with an optional plot")
    analyze.add_argument("input", help="audio file (WAV, FLAC...; stereo is mixed to mono)")
    analyze.add_argument("-o", "--output", required=True, type=output_path, help="analysis file to write (.partials.npz)")
    analyze.add_argument("--plot", type=output_path, help="also draw the partial tracks over the spectrogram to this PNG")
    analyze.add_argument("--harmonic", action="store_true",
                         help="follow f0 (pyin) and give track k to harmonic k+1 (pitched sounds)")
    analyze.add_argument("--hop", type=number(16, 8192, "samples", integer=True), default=None, help="hop between frames in samples (default: the analyser's)")
    analyze.add_argument("--max-tracks", type=number(1, 1000, "tracks", integer=True), default=None, help="most tracks kept (harmonics with --harmonic; default 100)")
    analyze.add_argument("--quiet", action="store_true", help="no progress bar")
    analyze.set_defaults(run=_analyze)

    resynth = commands.add_parser("resynth", help="resynthesise an analysis to WAV, optionally transformed")
    resynth.add_argument("input", help="analysis file (.partials.npz from `synth analyze`)")
    resynth.add_argument("-o", "--output", required=True, type=output_path, help="output WAV file")
    resynth.add_argument("--sines-only", action="store_true", help="leave out the noise residual")
    resynth.add_argument("--stretch", type=number(0.25, 4, "x"), default=1.0, help="time-stretch 0.25..4, pitch kept")
    resynth.add_argument("--transpose", type=number(-24, 24, "semitones"), default=0.0, help="pitch shift, semitones")
    resynth.add_argument("--keep-formants", action="store_true", help="keep the spectral envelope when transposing")
    resynth.add_argument("--morph-to", help="a second analysis to morph towards")
    resynth.add_argument("--morph", type=number(0, 1), help="0..1 of the way to --morph-to")
    resynth.add_argument("--freeze", type=number(0, 1), help="hold the frame at this share (0..1) of the duration")
    resynth.add_argument("--harmonics-only", action="store_true", help="drop partials that are not harmonics")
    resynth.add_argument("--odd-even", type=number(-1, 1), default=0.0, help="-1 odd harmonics only .. 1 even only")
    resynth.add_argument("--tilt", type=number(-12, 12, "dB/octave"), default=0.0, help="brightness tilt, dB per octave")
    resynth.add_argument("--format", choices=AUDIO_FORMATS, default="float32", help=FORMAT_HELP)
    resynth.add_argument("--quiet", action="store_true", help="no progress bars")
    resynth.set_defaults(run=_resynth)

    train = commands.add_parser("train", help="train a model").add_subparsers(dest="model", required=True)
    decoder = train.add_parser("decoder", help="the neural waveform decoder, on rendered instrument notes or your WAVs")
    decoder.add_argument("--data", required=True, help="data set folder (built there first if it has no manifest.json)")
    decoder.add_argument("--build", action="store_true", help="(re)build the data set from the soundfont first")
    decoder.add_argument("--soundfont", choices=("fluidr3", "timgm6mb"), default="fluidr3",
                         help="General MIDI soundfont the notes are rendered from (default fluidr3)")
    decoder.add_argument("--instruments", nargs="+", help="instrument names (default: the data tool's list of 20+)")
    decoder.add_argument("--wavs", help="build the data set from this folder of your own WAV files instead")
    decoder.add_argument("--workers", type=number(1, 4096, "workers", integer=True), default=1,
                         help="Ray workers that render and analyse the data set's notes (default 1: in this process)")
    decoder.add_argument("-o", "--output", required=True, type=output_path, help="model path without extension (.json + .safetensors)")
    decoder.add_argument("--steps", type=STEPS, default=3000)
    decoder.add_argument("--batch-size", type=BATCH_SIZE, default=8)
    decoder.add_argument("--excerpt-frames", type=number(4, 100_000, "frames", integer=True), default=96, help="frames per training excerpt (256 samples each)")
    decoder.add_argument("--learning-rate", type=LEARNING_RATE, default=2e-3)
    decoder.add_argument("--latent-dims", type=number(1, 64, integer=True), default=8, help="size of each instrument's timbre vector")
    decoder.add_argument("--hidden", type=number(8, 4096, integer=True), default=192, help="GRU size")
    _training_options(decoder)
    decoder.set_defaults(run=_train_decoder)
    vae = train.add_parser("vae", help="the timbre VAE, jointly with a trained decoder it then conditions")
    vae.add_argument("--data", required=True, help="a data set folder built by `synth train decoder`")
    vae.add_argument("--decoder", required=True, help="the trained decoder to start from (.json or stem)")
    vae.add_argument("-o", "--output", required=True, type=output_path,
                     help="timbre model path without extension; its decoder is written beside it as <output>-decoder")
    vae.add_argument("--steps", type=STEPS, default=1200)
    vae.add_argument("--batch-size", type=BATCH_SIZE, default=8)
    vae.add_argument("--learning-rate", type=LEARNING_RATE, default=1e-3, help="the encoder's (the decoder's is a tenth)")
    vae.add_argument("--beta", type=number(0, 100), default=0.05, help="KL weight after the warm-up")
    vae.add_argument("--warmup-steps", type=number(0, 10_000_000, "steps", integer=True), default=400, help="steps over which the KL weight rises from 0")
    vae.add_argument("--free-bits", type=number(0, 100, "nats"), default=0.5, help="nats of KL per dimension that cost nothing")
    _training_options(vae)
    vae.set_defaults(run=_train_vae)

    transfer = commands.add_parser("transfer", help="timbre transfer: a recording re-played by a decoder instrument")
    transfer.add_argument("input", help="a monophonic recording (WAV, FLAC...)")
    transfer.add_argument("preset", help="a preset with a decoder instrument, or a decoder model's .json")
    transfer.add_argument("-o", "--output", required=True, type=output_path, help="output WAV file (aligned with the input)")
    transfer.add_argument("--instrument", help="the model's timbre to use (default: the preset's)")
    transfer.add_argument("--pitch-shift", type=number(-24, 24, "semitones"), default=0.0, help="semitones")
    transfer.add_argument("--loudness-offset", type=number(-40, 40, "dB"), default=0.0, help="dB added to the input's loudness")
    transfer.add_argument("--format", choices=AUDIO_FORMATS, default="float32", help=FORMAT_HELP)
    transfer.add_argument("--quiet", action="store_true", help="no progress")
    transfer.set_defaults(run=_transfer)

    tts = train.add_parser("text-to-mel", help="align a speech corpus (LJSpeech layout) and train text-to-mel on it")
    tts.add_argument("--corpus", required=True, help="folder with metadata.csv and wavs/ (see `synth speech-corpus`)")
    tts.add_argument("-o", "--output", required=True, type=output_path, help="model path without extension (.json + .safetensors)")
    tts.add_argument("--steps", type=STEPS, default=1500)
    tts.add_argument("--align-steps", type=number(0, 10_000_000, "steps", integer=True), default=600, help="steps of the aligner before the model trains")
    tts.add_argument("--batch-size", type=BATCH_SIZE, default=8, help="utterances per step")
    tts.add_argument("--learning-rate", type=LEARNING_RATE, default=1e-3)
    tts.add_argument("--tokens", choices=("auto", "phonemes", "characters"), default="auto",
                     help="phonemes from espeak-ng, or characters (auto: phonemes where espeak-ng is installed)")
    _training_options(tts)
    tts.set_defaults(run=_train_text_to_mel)

    corpus = commands.add_parser("speech-corpus", help="build a speech corpus (LJSpeech layout) with Festival or espeak-ng")
    corpus.add_argument("output", type=output_path, help="corpus folder (grown, not replaced, when it exists)")
    corpus.add_argument("--minutes", type=number(0.1, 6000, "minutes"), default=60.0, help="minutes of speech (default 60)")
    corpus.add_argument("--voice", help="Festival's cmu_us_slt_arctic_hts (one speaker's recordings; the default) or an "
                                        "espeak-ng voice such as en-us (a formant synthesiser; --variants and --pitch "
                                        "choose among its voices)")
    corpus.add_argument("--workers", type=number(1, 4096, "workers", integer=True), default=1,
                        help="Ray workers that speak the sentences (default 1: in this process)")
    corpus.add_argument("--seed", type=number(0, 2**32 - 1, integer=True), default=0, help="order of the sentences (and voices, pitches)")
    corpus.add_argument("--variants", nargs="+", default=(),
                        help="espeak-ng voice variants to draw from per utterance (e.g. m1 m3 f2 f4; default: one voice)")
    corpus.add_argument("--pitch", type=number(0, 99, integer=True), nargs=2, metavar=("LOW", "HIGH"), default=(50, 50),
                        help="espeak-ng pitch 0..99, drawn per utterance from LOW..HIGH (default 50 50)")
    corpus.set_defaults(run=_speech_corpus)

    say = commands.add_parser("say", help="speak text into a WAV file")
    say.add_argument("text")
    say.add_argument("-o", "--output", required=True, type=output_path, help="output WAV file (48 kHz mono)")
    say.add_argument("--preset", help="a preset whose decoder slot names the speech decoder (default: the shipped one)")
    say.add_argument("--rate", type=number(0.25, 4.0), default=1.0, help="speaking speed (1 = as trained)")
    say.add_argument("--pitch", type=number(-24, 24, "semitones"), default=0.0, help="semitones up or down")
    say.add_argument("--format", choices=AUDIO_FORMATS, default="float32", help=FORMAT_HELP)
    say.add_argument("--quiet", action="store_true", help="no progress bar")
    say.set_defaults(run=_say)
    sing = commands.add_parser("sing", help="sing text on the notes of a MIDI file (one syllable a note)")
    sing.add_argument("text")
    sing.add_argument("melody", help="MIDI file with the melody")
    sing.add_argument("-o", "--output", required=True, type=output_path, help="output WAV file (48 kHz mono)")
    sing.add_argument("--preset", help="a preset whose decoder slot names the speech decoder (default: the shipped one)")
    sing.add_argument("--format", choices=AUDIO_FORMATS, default="float32", help=FORMAT_HELP)
    sing.add_argument("--quiet", action="store_true", help="no progress bar")
    sing.set_defaults(run=_sing)

    latent = commands.add_parser("latent", help="plot the timbre space: training notes and instruments, by family")
    latent.add_argument("output", type=output_path, help="PNG file to write")
    latent.add_argument("--model", default=None, help="timbre model .json (default: the shipped presets/models/gm-vae)")
    latent.set_defaults(run=_latent)
    encode = commands.add_parser("encode", help="print the timbre latent z of a sound, and the nearest instruments")
    encode.add_argument("input", help="audio file (WAV, FLAC...; mixed to mono)")
    encode.add_argument("--model", default=None, help="timbre model .json (default: the shipped presets/models/gm-vae)")
    encode.set_defaults(run=_encode)

    commands.add_parser("devices", help="list audio devices").set_defaults(run=_devices)
    commands.add_parser("presets", help="list the shipped presets").set_defaults(run=_presets)
    addresses = commands.add_parser("addresses", help="the OSC addresses of a preset: parameters with range and unit, [osc.map]")
    addresses.add_argument("preset", help="preset name or path to a .toml file")
    addresses.set_defaults(run=_addresses)
    convert = commands.add_parser("convert", help="convert a JSON Lines score or session to a MIDI file, or back")
    convert.add_argument("input", help="a .jsonl score (or recorded session), or a .mid file")
    convert.add_argument("output", type=output_path, help="the .mid file to write for a .jsonl input, the .jsonl for a .mid")
    convert.add_argument("--preset", help="preset name or .toml path whose [midi.cc] maps parameters to controllers "
                                          "(without it they are skipped, and listed)")
    convert.set_defaults(run=_convert)
    plugins = commands.add_parser("plugins", help="list plugins and their parameters")
    plugins.add_argument("--lv2", nargs="?", const="", metavar="URI",
                         help="list the installed LV2 plugins instead, or show the one with this URI")
    plugins.set_defaults(run=_plugins)
    return parser


class Terminated(BaseException):
    """SIGTERM arrived (a BaseException, as KeyboardInterrupt is, so that nothing swallows it)."""


def _terminated(_signal, _frame) -> None:
    raise Terminated


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """The project's warnings as one line, `synth: warning: <sentence>`; others as Python shows them."""
    if issubclass(category, SynthWarning):
        print(f"synth: warning: {message}", file=file or sys.stderr)
    else:
        (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the sentence (or the help)
        return exit_.code
    # SIGTERM cleans up as Ctrl-C does: the exception unwinds through every atomic write, which
    # removes its temporary file (play and serve set their own handler while they stream)
    signal.signal(signal.SIGTERM, _terminated)
    with warnings.catch_warnings():  # restores Python's way of showing warnings when the command ends
        warnings.showwarning = _show_warning
        try:
            return args.run(args)
        except SynthError as error:
            print(f"synth: error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("synth: interrupted; no partial output was left behind", file=sys.stderr)
            return 130
        except Terminated:
            print("synth: terminated; no partial output was left behind", file=sys.stderr)
            return 143


if __name__ == "__main__":
    sys.exit(main())
