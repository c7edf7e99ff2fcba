"""A trained denoiser run on pictures: the tiled engine over the network and the stages after it (`engine`, with
`tiling`), and a card's own settings merged with the caller's, the model for each image and its inputs
(`cards`)."""

from mdn.inference.cards import SEEDS, ModelChoice, as_card_runs, options, run, run_settings

__all__ = ["SEEDS", "ModelChoice", "as_card_runs", "options", "run", "run_settings"]
