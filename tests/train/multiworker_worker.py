"""One worker of a local MultiWorkerMirroredStrategy cluster (run by test_distribute.py).

usage: python multiworker_worker.py WORKERS INDEX OUT RESULT.npz [EPOCHS] [PER_WORKER_BATCH] [LR] [resume]
"""
from __future__ import annotations

import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv: list[str]) -> int:
    import numpy as np

    from edgekit.data import load_dataset
    from edgekit.errors import EdgekitError
    from edgekit.train import TrainConfig, train
    from edgekit.train.workers import export_tf_config, from_workers

    workers, index, out, result = argv[0], int(argv[1]), argv[2], argv[3]
    epochs = int(argv[4]) if len(argv) > 4 else 2
    batch = int(argv[5]) if len(argv) > 5 else 32
    lr = float(argv[6]) if len(argv) > 6 else 0.003
    resume = len(argv) > 7 and argv[7] == "resume"
    try:
        export_tf_config(from_workers(workers, index))
        data = load_dataset("digits", seed=0, limit=600)
        res = train(TrainConfig(model="cnn", epochs=epochs, batch_size=batch, lr=lr, seed=0, strategy="multiworker",
                                deterministic=True),
                    data, out=out, force=not resume, resume=resume, progress=lambda m: print(m, file=sys.stderr, flush=True))
    except EdgekitError as e:
        print(f"Error: {e}", file=sys.stderr, flush=True)
        return e.exit_code
    weights = res.model.get_weights()
    np.savez(result, *weights, metrics=json.dumps(res.metrics), history=json.dumps(res.history))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
