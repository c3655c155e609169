"""Training with shardstream's loader: the DINO loop, checkpoints, k-NN evaluation, torchrun.

Names are imported on first use, so the command line can read :mod:`.config` (torch-free) without
importing torch.
"""

from __future__ import annotations

from ..._lazy import lazy_module_hooks

#: public name -> submodule of shardstream.methods.train that defines it
LAZY_NAMES: dict[str, str] = {
    "DinoTrainConfig": "config",
    "KnnResult": "evaluate",
    "RunLog": "run_log",
    "RunPlan": "run_folder",
    "TrainResult": "loop",
    "build_loader": "loop",
    "build_model": "loop",
    "evaluate_knn": "evaluate",
    "extract_embeddings": "knn",
    "knn_accuracy": "knn",
    "knn_predict": "knn",
    "load_checkpoint": "checkpoint",
    "load_trained": "evaluate",
    "model_from_checkpoint": "evaluate",
    "plan_run": "run_folder",
    "read_config_file": "ssl_config",
    "save_checkpoint": "checkpoint",
    "train_dino": "loop",
    "write_config_file": "ssl_config",
    "write_knn_json": "evaluate",
}

__all__ = sorted(LAZY_NAMES)


__getattr__, __dir__ = lazy_module_hooks(__name__, LAZY_NAMES, globals())
