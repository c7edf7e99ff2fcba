"""The grid's scores summarised: means per noise and level, the least gain over the input, standard errors,
per-image values, a Markdown table and a plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mdn import noise
from mdn.bench.grid import NOISY, Score
from mdn.io import atomic


def summarise(scores: list[Score]) -> dict[tuple[str, float], dict[str, tuple[float, float]]]:
    """(noise, level) -> model -> (mean PSNR, mean SSIM) over images."""
    table: dict[tuple[str, float], dict[str, list[Score]]] = {}
    for s in scores:
        table.setdefault((s.noise, s.level), {}).setdefault(s.model, []).append(s)
    return {
        row: {m: (float(np.mean([s.psnr for s in c])), float(np.mean([s.ssim for s in c]))) for m, c in cells.items()}
        for row, cells in table.items()
    }


def least_gain(scores: list[Score], model: str) -> float | None:
    """The smallest PSNR gain of `model` over the noisy input on any (noise, level, image) of the grid where both
    were scored; None where there is none."""
    noisy = {(s.noise, s.level, s.image): s.psnr for s in scores if s.model == NOISY}
    pairs = [(s.psnr, noisy.get((s.noise, s.level, s.image))) for s in scores if s.model == model]
    gains = [psnr - floor for psnr, floor in pairs if floor is not None]
    return min(gains) if gains else None


def standard_error(values: list[float]) -> float:
    """The standard error of the mean of `values` (0 for fewer than two)."""
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def per_image(scores: list[Score], model: str, kind: str | None = None) -> dict[str, tuple[float, float]]:
    """Image -> (PSNR, SSIM) of `model`, each the mean over the levels of `kind` (every noise when None): the
    images are the independent draws a spread is computed over."""
    chosen: dict[str, list[Score]] = {}
    for s in scores:
        if s.model == model and kind in (None, s.noise):
            chosen.setdefault(s.image, []).append(s)
    return {i: (float(np.mean([s.psnr for s in c])), float(np.mean([s.ssim for s in c]))) for i, c in chosen.items()}


def markdown(scores: list[Score], reference: str | None = None) -> str:
    """Tables for a README: one row per model, mean PSNR ± its standard error over images / mean SSIM per noise
    type (over levels) and over the whole grid, with each model's least gain over its input when the grid has the
    `noisy` row; then each model's difference to `reference` (default: the first model that is not `noisy`),
    paired per image, ± its standard error: a difference within about two standard errors is not established.
    One image has no spread: its cells hold the mean alone; a model not scored on a noise type (`+aux` names on
    photos) leaves its cell and its means blank. PSNR is at most `metrics.PSNR_MAX` (100 dB)."""
    kinds = list(dict.fromkeys(s.noise for s in scores))
    models = list(dict.fromkeys(s.model for s in scores))
    gains = NOISY in models
    extra = ["mean", "least gain (dB)"] if gains else ["mean"]
    lines = ["| model | " + " | ".join(kinds + extra) + " |", "|---|" + "---|" * (len(kinds) + len(extra))]
    for model in models:
        cells = [_mean_cell(list(per_image(scores, model, kind).values())) for kind in kinds]
        cells.append(_mean_cell(list(per_image(scores, model).values())) if all(cells) else "")  # no partial mean
        if gains:
            gain = least_gain(scores, model)
            cells.append(f"{gain:+.2f}" if gain is not None else "")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    reference = reference or next((m for m in models if m != NOISY), None)
    others = [m for m in models if m not in (reference, NOISY)]
    if reference and others:
        lines += ["", f"| PSNR minus {reference} (dB, paired per image) | " + " | ".join([*kinds, "mean"]) + " |"]
        lines.append("|---|" + "---|" * (len(kinds) + 1))
        for model in others:
            cells = [_difference(scores, model, reference, kind) for kind in kinds]
            cells.append(_difference(scores, model, reference) if all(cells) else "")
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _difference(scores: list[Score], model: str, reference: str, kind: str | None = None) -> str:
    """'+0.31 ± 0.12': `model`'s PSNR minus `reference`'s on `kind` (None: every noise), paired per image."""
    ours, theirs = per_image(scores, model, kind), per_image(scores, reference, kind)
    return _with_spread([ours[i][0] - theirs[i][0] for i in ours if i in theirs], "+")


def _mean_cell(values: list[tuple[float, float]]) -> str:
    """'31.00 ± 1.15 / 0.900': the mean PSNR of per-image (PSNR, SSIM) `values` with its spread, and the mean SSIM;
    blank for none."""
    if not values:
        return ""
    return f"{_with_spread([v[0] for v in values])} / {np.mean([v[1] for v in values]):.3f}"


def _with_spread(values: list[float], sign: str = "") -> str:
    """'31.00 ± 1.15': the mean of `values` (with `sign` "+", signed) ± its standard error, the mean alone for one,
    blank for none."""
    if not values:
        return ""
    mean = f"{np.mean(values):{sign}.2f}"
    return f"{mean} ± {standard_error(values):.2f}" if len(values) > 1 else mean


def plot(scores: list[Score], path: Path) -> None:
    """PSNR against level, one panel per noise type, one line per model over the levels it was scored at (the
    paper's Figure 11)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(scores)
    kinds = list(dict.fromkeys(k for k, _ in summary))
    models = list(dict.fromkeys(s.model for s in scores))
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.2 * len(kinds), 3.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        levels = sorted(level for k, level in summary if k == kind)
        for model in models:  # a model not scored here draws nothing, keeping its colour in every panel
            scored = [lv for lv in levels if model in summary[(kind, lv)]]
            ax.plot(scored, [summary[(kind, lv)][model][0] for lv in scored], marker="o", label=model)
        ax.set_title(kind)
        kind_type = noise.NOISE_TYPES.get(kind)
        ax.set_xlabel(kind_type.parameter.split(" (")[0] if kind_type else "samples per pixel")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("PSNR (dB)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    atomic.write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, **_maker(path.suffix.lower())))
    plt.close(fig)


def _maker(suffix: str) -> dict:
    """savefig's arguments that name matplotlib in files Pillow writes (PNG, SVG, PDF and EPS name it anyway),
    so that the next run knows the file for its own plot (`batch.check_report`)."""
    from PIL import Image

    if suffix in (".jpg", ".jpeg"):
        return {"pil_kwargs": {"comment": b"matplotlib"}}
    if suffix in (".tif", ".tiff", ".webp"):
        exif = Image.Exif()
        exif[0x0131] = "matplotlib"  # Software
        return {"pil_kwargs": {"tiffinfo": exif} if suffix != ".webp" else {"exif": exif.tobytes()}}
    return {}
