"""What a model is worth: PSNR/SSIM over models x noise types x levels x images (`grid`, with renders in
`renders`), summarised in tables (`tables`), and speed and memory (`speed`); `Study` is one run of `mdn bench`.

Noisy inputs come from fixed seeds (per image, noise and level) and are cached on disk, so two runs of the
same grid give identical numbers. `noisy` stands for the unprocessed input, the floor of every row.
"""

from mdn.bench.grid import (
    MPI_PREFIX,
    NOISY,
    SAMPLES,
    VARIANTS,
    WITH_AUX,
    ZEROSHOT_GRID,
    ZS_N2N,
    Note,
    Score,
    as_16_bit,
    card_files,
    default_grid,
    denoise_cards,
    denoisers,
    engine_options,
    load_references,
    noisy_input,
    parse_grid,
    quality_scores,
)
from mdn.bench.renders import RenderCase, check_aux, parse_spps, render_cases, render_scores
from mdn.bench.speed import (
    OutOfMemory,
    Speed,
    SpeedRows,
    SpeedTable,
    TrainSpeed,
    parse_sizes,
    peak_rss,
    peer_speed,
    speed,
    speed_ratios,
    speed_rows,
    train_speed,
    train_speed_rows,
)
from mdn.bench.study import Study
from mdn.bench.tables import least_gain, markdown, per_image, plot, standard_error, summarise

__all__ = [
    "MPI_PREFIX", "NOISY", "SAMPLES", "VARIANTS", "WITH_AUX", "ZEROSHOT_GRID", "ZS_N2N", "Note", "OutOfMemory",
    "RenderCase", "Score", "Speed", "SpeedRows", "SpeedTable", "Study", "TrainSpeed", "as_16_bit", "card_files",
    "check_aux", "default_grid", "denoise_cards", "denoisers", "engine_options", "least_gain", "load_references",
    "markdown", "noisy_input", "parse_grid", "parse_sizes", "parse_spps", "peak_rss", "peer_speed", "per_image", "plot",
    "quality_scores", "render_cases", "render_scores", "speed", "speed_ratios", "speed_rows", "standard_error",
    "summarise", "train_speed", "train_speed_rows",
]  # fmt: skip
