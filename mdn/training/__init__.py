"""Training: what a run learns (`objectives`), its options, data, schedule, devices, the loop with its
checkpoints (`loop`), the card it writes, and the sittings a run is made of.

`mdn train` and Python users enter through `TrainOptions` and `Sitting` (or `Trainer` for one run in a folder).
"""

from mdn.training.data import dead_leaves, load_images, sample_batch, stripes, textiles
from mdn.training.devices import end_distributed, init_distributed, training_dtype
from mdn.training.loop import LOSS_EVERY, Diverged, Progress, Trainer
from mdn.training.options import TrainOptions, parse_range
from mdn.training.recipes import OBJECTIVES, objective_class
from mdn.training.schedule import SCHEDULES, scheduled_rate
from mdn.training.sitting import NameTaken, NothingTrained, Sitting
from mdn.units import parse_duration

__all__ = [
    "LOSS_EVERY",
    "OBJECTIVES",
    "SCHEDULES",
    "Diverged",
    "NameTaken",
    "NothingTrained",
    "Progress",
    "Sitting",
    "TrainOptions",
    "Trainer",
    "dead_leaves",
    "end_distributed",
    "init_distributed",
    "load_images",
    "objective_class",
    "parse_duration",
    "parse_range",
    "sample_batch",
    "scheduled_rate",
    "stripes",
    "textiles",
    "training_dtype",
]
