"""Differentiable synthesiser (torch) for training the decoder, and the multi-resolution STFT loss.

It renders controls exactly as the realtime path does, so a model trained here sounds the same
there: the harmonic part as synth.dsp.oscbank.render_partials driven frame by frame, the noise part
as synth.dsp.filtered_noise.filtered_noise_block.

Frame convention: frame k's controls are the values reached at the END of block k (samples
[k*hop, (k+1)*hop)); block k glides every control linearly, per sample, from frame k-1 to frame k.
Frame -1 is silence (amplitude 0) at the f0 of frame 0. Harmonic h (1-based) of frame k sounds at
h * f0_k Hz (rounded to the dtype of f0, float32 like the oscillator bank's inputs) with amplitude
amplitude_k * harmonics_k[h]; its phase is the running sum of 2*pi*f/sr over earlier samples
(from 0), and each sample is scaled by the Nyquist gain (1 up to 0.45*sr, smoothstep to 0 at
0.5*sr). The noise of block k is white noise through frame k's filter; it lags by NB - 1 samples.
"""

from __future__ import annotations

import math

import torch

from synth.dsp.oscbank import FADE_END, FADE_START
from synth.errors import SynthError

_CHUNK_ELEMENTS = 1 << 22  # float64 phase values computed at once (bounds memory: 32 MiB a buffer)


def _harmonic_waves(freq_start_hz: torch.Tensor, freq_end_hz: torch.Tensor, sample_rate: float,
                    hop: int, dtype: torch.dtype) -> torch.Tensor:
    """gain * sin(phase) of every harmonic and sample, [B, T, hop, H] in `dtype`, from the block
    start and end frequencies [B, T, H] (Hz). Phases in float64 (the exact sum per block, as
    render_partials hands it on), the Nyquist gain in `dtype`, evaluated only where it is not 1."""
    batch, frames, count = freq_end_hz.shape
    device = freq_end_hz.device
    f_start = freq_start_hz.double()
    f_end = freq_end_hz.double()
    rad_per_hz = 2.0 * math.pi / sample_rate
    start_rad = rad_per_hz * f_start  # radians per sample at the block's first sample
    step_rad = rad_per_hz * (f_end - f_start) / hop  # its change per sample
    advance = hop * start_rad + 0.5 * hop * (hop - 1.0) * step_rad  # phase gained over a block
    block_phase = torch.remainder(torch.cumsum(advance, dim=1) - advance, 2.0 * math.pi)
    # phase at sample k of a block = block_phase + k * start_rad + k (k - 1) / 2 * step_rad
    k = torch.arange(hop, dtype=torch.float64, device=device)
    phase_basis = torch.stack([torch.ones_like(k), k, 0.5 * k * (k - 1.0)], dim=1)  # [hop, 3]
    phase_coef = torch.stack([block_phase, start_rad, step_rad], dim=2)  # [B, T, 3, H]
    # frequency at sample k (fraction of sr) = f_start / sr + k / hop * (f_end - f_start) / sr
    freq_basis = torch.stack([torch.ones_like(k), k / hop], dim=1).to(dtype)  # [hop, 2]
    freq_coef = (torch.stack([f_start, f_end - f_start], dim=2) / sample_rate).to(dtype)  # [B, T, 2, H]
    fading = torch.maximum(f_start.abs(), f_end.abs()) > FADE_START * sample_rate  # [B, T, H]
    waves = torch.empty(batch, frames, hop, count, dtype=dtype, device=device)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, batch * hop * count))
    for t0 in range(0, frames, chunk):
        sl = slice(t0, t0 + chunk)
        waves[:, sl] = torch.sin(phase_basis @ phase_coef[:, sl]).to(dtype)
        if bool(fading[:, sl].any()):
            x = (FADE_END - torch.abs(freq_basis @ freq_coef[:, sl])) * (1.0 / (FADE_END - FADE_START))
            x = x.clamp_(0.0, 1.0)
            waves[:, sl] *= x * x * (3.0 - 2.0 * x)
    return waves


def harmonic_synth(f0_hz: torch.Tensor, amplitude: torch.Tensor, harmonics: torch.Tensor,
                   sample_rate: float, hop: int) -> torch.Tensor:
    """Harmonic audio [B, T * hop] from f0_hz [B, T] (Hz), amplitude [B, T] (linear) and harmonics
    [B, T, H] (distribution), following the frame convention above. Differentiable in amplitude
    and harmonics (not in f0, which is conditioning)."""
    if f0_hz.dim() != 2 or amplitude.shape != f0_hz.shape or harmonics.dim() != 3 \
            or harmonics.shape[:2] != f0_hz.shape:
        raise SynthError(f"harmonic_synth: f0_hz {list(f0_hz.shape)}, amplitude {list(amplitude.shape)} must be "
                         f"[batch, frames] and harmonics {list(harmonics.shape)} [batch, frames, H]")
    batch, frames, count = harmonics.shape
    numbers = torch.arange(1, count + 1, dtype=f0_hz.dtype, device=f0_hz.device)
    freq = f0_hz.detach()[..., None] * numbers
    freq_prev = torch.cat([freq[:, :1], freq[:, :-1]], dim=1)
    amp = amplitude[..., None] * harmonics
    amp_prev = torch.cat([torch.zeros_like(amp[:, :1]), amp[:, :-1]], dim=1)
    with torch.no_grad():
        waves = _harmonic_waves(freq_prev, freq, sample_rate, hop, amp.dtype)
    ramp = (torch.arange(hop, dtype=amp.dtype, device=amp.device) / hop)[:, None]
    out = waves @ amp_prev[..., None] + ramp * (waves @ (amp - amp_prev)[..., None])
    return out.reshape(batch, frames * hop)


def noise_filters(noise_mags: torch.Tensor) -> torch.Tensor:
    """Causal FIR taps [..., L], L = 2 * (NB - 1), from band magnitudes [..., NB] (linear, DC to
    Nyquist): inverse real DFT (zero phase), rolled by NB - 1, times a periodic Hann window."""
    bands = noise_mags.shape[-1]
    length = 2 * (bands - 1)
    impulse = torch.fft.irfft(noise_mags, n=length)
    window = torch.hann_window(length, periodic=True, dtype=impulse.dtype, device=impulse.device)
    return torch.roll(impulse, bands - 1, dims=-1) * window


def filtered_noise(noise_mags: torch.Tensor, white: torch.Tensor, hop: int) -> torch.Tensor:
    """Noise audio [B, T * hop]: block k of `white` [B, T * hop] convolved with frame k's filter
    (noise_filters of noise_mags [B, T, NB]), the convolutions overlap-added (tails beyond the
    last block dropped). Delay: NB - 1 samples (the filter's centre), 64 for 65 bands."""
    if noise_mags.dim() != 3 or white.shape != (noise_mags.shape[0], noise_mags.shape[1] * hop):
        raise SynthError(f"filtered_noise: noise_mags {list(noise_mags.shape)} must be [batch, frames, NB] and "
                         f"white {list(white.shape)} [batch, frames * {hop}]")
    batch, frames, _ = noise_mags.shape
    taps = noise_filters(noise_mags)
    length = taps.shape[-1]
    frame_len = hop + length - 1
    nfft = 1 << (frame_len - 1).bit_length()
    blocks = white.to(taps.dtype).reshape(batch, frames, hop)
    conv = torch.fft.irfft(torch.fft.rfft(blocks, n=nfft) * torch.fft.rfft(taps, n=nfft), n=nfft)[..., :frame_len]
    total = (frames - 1) * hop + frame_len
    out = torch.nn.functional.fold(conv.transpose(1, 2), output_size=(1, total), kernel_size=(1, frame_len),
                                   stride=(1, hop))
    return out.reshape(batch, total)[:, :frames * hop]


def synthesize(controls: dict, f0_hz: torch.Tensor, white: torch.Tensor, sample_rate: float,
               hop: int) -> torch.Tensor:
    """Audio [B, T * hop] = harmonic_synth + filtered_noise of a decoder's controls dict
    ({"amplitude": [B, T], "harmonics": [B, T, H], "noise": [B, T, NB]}), f0_hz [B, T] (Hz),
    white noise [B, T * hop]."""
    return (harmonic_synth(f0_hz, controls["amplitude"], controls["harmonics"], sample_rate, hop)
            + filtered_noise(controls["noise"], white, hop))


def multi_resolution_stft_loss(pred: torch.Tensor, target: torch.Tensor,
                               fft_sizes: tuple[int, ...] = (2048, 1024, 512, 256, 128, 64),
                               eps: float = 1e-5) -> torch.Tensor:
    """Mean over FFT sizes of sum|S_pred - S_target| / sum|S_target| (spectral convergence, L1)
    plus mean|log(S_pred + eps) - log(S_target + eps)|, S the STFT magnitude (Hann window of the
    FFT size, hop a quarter of it). pred, target: audio [B, N] or [N] of the same shape. 0 for
    identical signals; a scalar tensor, differentiable in pred."""
    if pred.shape != target.shape or pred.dim() not in (1, 2):
        raise SynthError(f"multi_resolution_stft_loss: pred {list(pred.shape)} and target {list(target.shape)} "
                         f"must be the same [batch, samples] or [samples]")
    total = pred.new_zeros(())
    for size in fft_sizes:
        window = torch.hann_window(size, dtype=pred.dtype, device=pred.device)
        spectra = [torch.stft(x, size, hop_length=size // 4, window=window, center=True, pad_mode="constant",
                              return_complex=True).abs() for x in (pred, target)]
        s_pred, s_target = spectra
        convergence = (s_pred - s_target).abs().sum() / (s_target.sum() + eps)
        log_distance = (torch.log(s_pred + eps) - torch.log(s_target + eps)).abs().mean()
        total = total + convergence + log_distance
    return total / len(fft_sizes)
