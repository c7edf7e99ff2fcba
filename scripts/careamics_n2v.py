"""Run CAREamics' Noise2Void (N2V2 by default) on a noisy stack, as a microscopist would: train on the stack,
predict every frame, write a float32 TIFF. The peer for `mdn train --noisy`; it runs in its own environment,
because careamics pins a torch build of its own:

    python -m venv ~/careamics && ~/careamics/bin/pip install careamics==0.3.5 tifffile
    ~/careamics/bin/python scripts/careamics_n2v.py noisy.tif out.tif --minutes 10

The wall time covers training and prediction; training stops (Lightning's Timer) when the budget less a
prediction allowance is spent. The report (JSON on stdout) gives the seconds each took and the epochs done.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import tifffile
import torch
from careamics import CAREamist
from careamics.config import create_n2v_config
from lightning.pytorch.callbacks import Timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("noisy", type=Path, help="(T, Y, X) or (Y, X) TIFF")
    parser.add_argument("out", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0, help="wall time for training and prediction")
    parser.add_argument("--epochs", type=int, default=1000, help="upper bound; the time budget usually stops first")
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50, help="batches per epoch")
    parser.add_argument("--n2v", action="store_true", help="plain N2V instead of N2V2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("careamics-runs"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    noisy = tifffile.imread(args.noisy).astype(np.float32)
    axes = "SYX" if noisy.ndim == 3 else "YX"
    config = create_n2v_config(
        experiment_name="n2v_peer", data_type="array", axes=axes, patch_size=[args.patch, args.patch],
        batch_size=args.batch, num_epochs=args.epochs, num_steps=args.steps, use_n2v2=not args.n2v,
    )  # fmt: skip
    prediction_allowance = 0.05 * args.minutes * 60 + 10
    timer = Timer(duration=timedelta(seconds=max(args.minutes * 60 - prediction_allowance, 10)))
    careamist = CAREamist(config, work_dir=args.workdir, callbacks=[timer], enable_progress_bar=False)
    careamist.train(train_data=noisy)
    trained = time.perf_counter()
    predictions, _ = careamist.predict(noisy, axes=axes, data_type="array")
    predicted = np.squeeze(np.concatenate([np.asarray(p) for p in predictions])).astype(np.float32)
    tifffile.imwrite(args.out, predicted.reshape(noisy.shape))
    end = time.perf_counter()
    report = {
        "train_seconds": round(trained - start, 1), "predict_seconds": round(end - trained, 1),
        "seconds": round(end - start, 1), "epochs": careamist.trainer.current_epoch,
        "method": "n2v" if args.n2v else "n2v2",
    }  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
