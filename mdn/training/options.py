"""Every knob of a training run, each objective's own defaults, the command line that gives them, and the parser
of its ranges. A leaf of the training package: it names the objectives and imports none of them
(`recipes.OBJECTIVES` maps the names to their classes)."""

from __future__ import annotations

import math
import os
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from mdn.errors import MdnError
from mdn.io.atomic import NAME_MAX
from mdn.io.tonemap import HEADROOM_PERCENTILE

FINE_TUNING: dict[str, Any] = {"config": "", "init": "unet", "mask": False, "batch": 16, "schedule": "cosine"}
"""What the objectives that fine-tune a trained U-Net card share: its network's own config, no masks, batch 16,
cosine decay."""
NOISY_OBJECTIVE = "self-supervised"
"""The objective `mdn train --noisy` runs."""
OBJECTIVE_DEFAULTS: dict[str, dict[str, Any]] = {
    "denoise": {},
    "fill": {"config": "syn", "crop": 128, "lr": 2e-3, "schedule": "cosine", "input_mask": (0.3, 0.3)},
    NOISY_OBJECTIVE: {
        **FINE_TUNING,
        "init": "unet-dct-practical",
        "iters": 4000,
        "lr": 1e-4,
        "ema": 0.99,
        "validate_every": 250,
    },
    "render": {**FINE_TUNING, "iters": 4000, "lr": 2e-4, "warmup": 100, "validate_every": 500, "headroom": 8.0},
}
"""Objective name -> its `TrainOptions` defaults of its own (config, crop, learning rate, schedule, input mask).
`mdn train --noisy` starts from the default card, whose stages its card inherits: on held-out microscopy stacks
+0.29 dB over starting from `unet` at equal time (docs/microscopy.md)."""


CARD_SUFFIXES = (".json", ".pt")
"""The endings of a card's files: a --model with one is taken as a file's path, never as a name."""


def check_name(name: str) -> None:
    """An MdnError where `name` cannot be a card's: blank, hidden, a path, ending as a card's file does (`-m NAME`
    would then be taken as a path), or too long for its card's files."""
    if not name.strip() or name != name.strip():
        raise MdnError(f"--name must not be blank nor begin or end with spaces, got {name!r}")
    if name.startswith(".") or any(c in name for c in "/\\"):
        raise MdnError(f"--name must be a plain file name (no folders, not hidden), got {name!r}")
    if name.lower().endswith(CARD_SUFFIXES):
        stem, suffix = name.rsplit(".", 1)
        raise MdnError(f"--name {name} ends in .{suffix}, which mdn reads as a card file's path: name it {stem}")
    most = NAME_MAX - len(".json")  # its longest file, NAME.json (a temporary's name is cut to fit: `atomic`)
    if len(os.fsencode(name)) > most:
        raise MdnError(f"--name is {len(os.fsencode(name))} bytes long: its card's file names allow {most} at most")


MIN_CROP = 16
"""The smallest training crop: the U-Net's coarsest level is a sixteenth of it."""


@dataclass
class TrainOptions:
    """Every knob of a run; the defaults follow the paper, and `create` gives an objective's own."""

    name: str
    data: list[str]
    objective: str = "denoise"
    config: str = "small"
    iters: int = 200_000
    batch: int = 8
    crop: int = 64
    lr: float = 1e-4
    warmup: int = 0
    schedule: str = "step"
    init: str = ""
    noise: str = "gaussian"
    level: float = 15.0
    """The training noise level, and the validation's."""
    level_range: tuple[float, ...] = ()
    """LOW, HIGH: each crop's training noise level drawn uniformly from this range instead (validation stays at
    `level`); empty: every crop at `level`."""
    grey_share: float = 0.0
    """The share of crops made grey, with the same noise in every channel, as grey images reach the network."""
    thumbnail_share: float = 0.0
    """Practical training: the share of crops made web thumbnails (decimated by 2, plain white noise;
    `degrade.practical_pair`)."""
    aux_share: float = 0.0
    """Render training: the share of crops that see the render's albedo and normal (the rest see none, so the
    card takes renders with or without them); 0: a card without those inputs."""
    headroom: float = 0.0
    """Render training: the tone map's exposure lowered so that the brightness at `headroom_percentile` maps to
    at most this (`tonemap.ToneMap.fit`); 0: the log-average alone."""
    headroom_percentile: float = HEADROOM_PERCENTILE
    """Render training: the brightness percentile the headroom bounds in the training crops' tone map (the card
    keeps `mdn denoise`'s, this default, and is validated in it)."""
    mask: bool = True
    input_mask: tuple[float, float] = (0.75, 0.85)
    """The range the input mask ratio of each crop is drawn from."""
    attention_mask: float = 0.75
    """The attention mask ratio."""
    ema: float = 0.999
    dead_leaves: int = 0
    stripes: int = 0
    """Procedural images of striped leaves added to the data (`data.stripes`): fine periodic texture."""
    textiles: int = 0
    """Procedural images of cloth added to the data (`data.textiles`): stripes and plaids of any contrast."""
    validation: list[str] = field(default_factory=list)
    validate_every: int = 500
    checkpoint_every: int = 500
    seed: int = 0
    threads: int = 0
    precision: str = "fp32"
    """The forward pass's compute type: fp32, bf16 or auto (see `training_dtype`)."""
    compile: bool = False
    device: str = "auto"
    attention_kernel: str = "auto"

    FLAGS: ClassVar[dict[str, str]] = {
        "validation": "--val", "mask": "--no-mask", "input_mask": "--input-mask-range",
        "attention_mask": "--attention-mask-ratio",
    }  # fmt: skip
    """`mdn train` options whose names differ from the fields'."""

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():  # inf and NaN pass every comparison below one way or the other
            numbers = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
                shown = ",".join(f"{v:g}" for v in numbers)
                raise MdnError(f"{self.flag_of(key)} must be finite, got {shown}")
        check_name(self.name)
        low, high = self.input_mask
        if not 0 <= low <= high < 1:
            flag = self.flag_of("input_mask")
            raise MdnError(f"{flag} must be LOW,HIGH with 0 <= LOW <= HIGH < 1, got {low:g},{high:g}")
        at_least = {"iters": 1, "batch": 1, "crop": MIN_CROP, "warmup": 0, "validate_every": 1, "checkpoint_every": 1}
        at_least |= {"dead_leaves": 0, "stripes": 0, "textiles": 0, "headroom": 0, "level": 0, "seed": 0}
        for key, least in at_least.items():
            if getattr(self, key) < least:
                raise MdnError(f"{self.flag_of(key)} must be {least} or more, got {getattr(self, key):g}")
        within = {"grey_share": (0, 1), "thumbnail_share": (0, 1), "aux_share": (0, 1)}
        within |= {"attention_mask": (0, 1), "headroom_percentile": (50, 100)}
        for key, (least, most) in within.items():
            if not least <= getattr(self, key) <= most:
                raise MdnError(f"{self.flag_of(key)} must be in [{least}, {most}], got {getattr(self, key):g}")
        if not self.lr > 0:
            raise MdnError(f"--lr must be more than 0, got {self.lr:g}")
        if not 0 <= self.ema < 1:
            raise MdnError(f"--ema must be in [0, 1) (the share of the average kept each step), got {self.ema:g}")
        if self.level_range and not (len(self.level_range) == 2 and 0 < self.level_range[0] <= self.level_range[1]):
            raise MdnError(f"--level-range must be LOW,HIGH with 0 < LOW <= HIGH, got {self.level_range}")

    @classmethod
    def flag_of(cls, key: str) -> str:
        """The `mdn train` option that sets the field `key`."""
        return cls.FLAGS.get(key, "--" + key.replace("_", "-"))

    @classmethod
    def create(cls, **given: Any) -> TrainOptions:
        """Options for an objective: its own defaults, then what was given (None: the default)."""
        given = {key: value for key, value in given.items() if value is not None}
        name = given.get("objective", "denoise")
        if name not in OBJECTIVE_DEFAULTS:
            raise MdnError(f"unknown objective {name!r} (choose from {', '.join(OBJECTIVE_DEFAULTS)})")
        return cls(**{**OBJECTIVE_DEFAULTS[name], **given})

    @classmethod
    def from_recipe(cls, recipe: dict[str, Any]) -> TrainOptions:
        """The options a card's `training.recipe` or a checkpoint's `options` recorded (as JSON); records from
        before `precision` hold `bf16: true/false` instead."""
        given = {
            **recipe,
            "input_mask": tuple(recipe.get("input_mask", cls.input_mask)),
            "level_range": tuple(recipe.get("level_range", ())),
        }
        if "bf16" in given:
            given["precision"] = "bf16" if given.pop("bf16") else "fp32"
        return cls(**given)

    def command(self) -> str:
        """The `mdn train` command line that gives these options (defaults left out), quoted for a POSIX shell
        so that it can be pasted whatever spaces or quotes a name or path holds."""
        return shlex.join(["mdn", "train", *self.arguments()])

    def arguments(self) -> list[str]:
        """The `mdn train` arguments that give these options, one item each (defaults left out)."""
        defaults = TrainOptions.create(name="defaults", data=[], objective=self.objective)
        noisy = self.objective == NOISY_OBJECTIVE
        arguments: list[str] = []
        for key, value in asdict(self).items():
            if key == "objective" and value in ("denoise", NOISY_OBJECTIVE):
                continue
            if key not in ("name", "data", "objective") and value == getattr(defaults, key):
                continue
            flag = "--noisy" if key == "data" and noisy else self.flag_of(key)
            arguments.extend(_as_arguments(flag, value))
        return arguments

    def given(self, keys: tuple[str, ...]) -> list[str]:
        """The options among the fields `keys` that differ from the objective's defaults, as typed on the command
        line (`--level 30`, `--no-mask`): an objective refuses those it does not use, rather than record them in
        its card as if it had trained with them."""
        defaults = TrainOptions.create(name="defaults", data=[], objective=self.objective)
        given = [key for key in keys if getattr(self, key) != getattr(defaults, key)]
        return [" ".join(_as_arguments(self.flag_of(key), getattr(self, key))) for key in given]


def _as_arguments(flag: str, value: Any) -> list[str]:
    """The command-line arguments that give an option `flag` a field's `value` (a flag alone for a switch)."""
    if isinstance(value, bool):
        return [flag]
    if isinstance(value, list):
        return [part for item in value for part in (flag, str(item))]
    if isinstance(value, tuple):
        return [flag, ",".join(f"{v:g}" for v in value)]
    return [flag, f"{value:g}" if isinstance(value, float) else str(value)]


def parse_range(text: str) -> tuple[float, float]:
    """'0.75,0.85' -> (0.75, 0.85); one number is a range of that value alone."""
    low, _, high = text.partition(",")
    try:
        return float(low), float(high or low)
    except ValueError:
        raise MdnError(f"expected LOW,HIGH numbers such as 0.75,0.85, got {text!r}") from None
