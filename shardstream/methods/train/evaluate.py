"""k-NN evaluation of a DINO run: embed a training and a held-out part with the frozen teacher.

The held-out part is every ``holdout``-th sample *of each class* (the 1st, ``holdout + 1``-th, ...
in index order, chosen with the loader's SQL ``query`` and a window over ``label``), the training
part the rest, or a second data set when one is given. Splitting per class keeps both parts
balanced whatever the sample order: a plain ``index % holdout`` split would put whole classes on
one side when labels repeat with the index (image ``i`` of ``iter_demo_samples`` has label
``i % classes``; with ``holdout=2`` and 10 classes no held-out class would be in the bank).
Images are resized and centre-cropped (shorter side to size * 8/7, the ImageNet 256 -> 224 ratio)
and normalised, as in DINO's evaluation.

Which size. :func:`eval_image_size` picks the run's *local* crop size (16 px by default), not the
global one. On the demo set a class is one photo, so at the global size (32 px) colour and layout
alone nearly identify it: raw pixels reach 84 % top-1 and a random-init ViT 78-85 %, which leaves
a few hundred CPU steps of DINO (whose colour jitter and grayscale teach it to ignore colour) only
2-6 points to show, within the noise. At the local size the untrained ViT falls to 72-80 % (its
8 px patches see 4 tokens) while the trained teacher keeps 84-87 %: the student was trained to
map exactly such small views onto the global ones. Both sizes are real k-NN evaluations of the same
frozen teacher; ``image_size`` takes either.

Which split. ``holdout=2`` holds out half the samples (300 queries of the 600-image demo set,
a standard error of about 2 points at 85 %, against 3.3 with every 5th sample).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...errors import CheckpointError, ConfigError
from ...format.atomic import StagedFiles
from ...loader.loader import Loader
from ...vision.supervised import EvalPreset
from ..dino import DINO
from .checkpoint import load_checkpoint
from .config import DinoTrainConfig
from .knn import extract_embeddings, knn_accuracy
from .loop import build_model

__all__ = ["KnnResult", "evaluate_knn", "eval_image_size", "model_from_checkpoint", "load_trained"]
__all__ += ["write_knn_json"]


@dataclass(frozen=True)
class KnnResult:
    """Top-1 k-NN accuracy of one model on one split.

    Attributes:
        accuracy: fraction of held-out samples classified correctly.
        train_samples: size of the embedding bank.
        test_samples: number of held-out samples.
        k: neighbours used.
    """

    accuracy: float
    train_samples: int
    test_samples: int
    k: int


def eval_image_size(config: DinoTrainConfig) -> int:
    """The image side the k-NN evaluation of a run uses by default: its local crop size.

    Args:
        config: the run's settings.

    Returns:
        ``config.local_crops_size`` (the global size when the run has no local crops).
    """
    return config.local_crops_size if config.local_crops_number else config.global_crops_size


def model_from_checkpoint(path: str | os.PathLike) -> tuple[DINO, DinoTrainConfig]:
    """Rebuild the model of a training checkpoint, weights loaded, in eval mode.

    Raises:
        CheckpointError: the checkpoint is unusable.
    """
    model, config, _ = load_trained(path)
    return model, config


def load_trained(path: str | os.PathLike) -> tuple[DINO, DinoTrainConfig, int]:
    """Rebuild the model of a training checkpoint (eval mode), its settings and its step.

    Raises:
        CheckpointError: the checkpoint is unusable.
    """
    state = load_checkpoint(path)
    try:
        config = DinoTrainConfig.from_dict(dict(state["config"]), source=f"checkpoint {path}")
        model = build_model(config)
        model.load_state_dict(state["model"])
        step = int(state["step"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"checkpoint {path}: cannot rebuild its model ({type(error).__name__}: {error})"
        ) from error
    return model.eval(), config, step


def write_knn_json(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write a k-NN result (plain JSON data) to ``path`` atomically, e.g. ``RUN/knn.json``.

    Returns:
        The path written.
    """
    path = Path(path)
    staged = StagedFiles()
    try:
        staged.write_bytes(path, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
        staged.commit()
    except BaseException:
        staged.abort()
        raise
    return path


def evaluate_knn(
    model: DINO,
    data: str | os.PathLike,
    *,
    image_size: int,
    holdout: int = 2,
    test_data: str | os.PathLike | None = None,
    k: int = 20,
    temperature: float = 0.07,
    batch_size: int = 64,
    num_workers: int = 2,
    device: str | torch.device = "cpu",
) -> KnnResult:
    """Weighted k-NN top-1 accuracy of the teacher's CLS embeddings.

    Args:
        model: a DINO model (its teacher embeds).
        data: the labelled data set.
        image_size: the side of the centre crops fed to the model.
        holdout: with no ``test_data``, every ``holdout``-th sample of each class is held out
            (``>= 2``).
        test_data: a separate held-out data set; then all of ``data`` is the bank.
        k / temperature: see :func:`~shardstream.methods.train.knn.knn_predict`.
        batch_size / num_workers: loader settings.
        device: where the model runs.

    Returns:
        A :class:`KnnResult`.

    Raises:
        ConfigError: ``holdout < 2``, or a part is empty.
    """
    if test_data is None and holdout < 2:
        raise ConfigError(f"holdout must be >= 2, got {holdout}")
    device = torch.device(device)
    model = model.to(device).eval()

    def embed(images: torch.Tensor) -> torch.Tensor:
        return model(images=images).embedding

    if test_data is None:
        bank = _loader(data, _split_query(holdout, held_out=False), image_size, batch_size)
        tests = _loader(data, _split_query(holdout, held_out=True), image_size, batch_size)
    else:
        bank = _loader(data, None, image_size, batch_size)
        tests = _loader(test_data, None, image_size, batch_size)
    bank_features, bank_labels = extract_embeddings(
        embed, _batches(bank, num_workers, device), label_key="label"
    )
    test_features, test_labels = extract_embeddings(
        embed, _batches(tests, num_workers, device), label_key="label"
    )
    accuracy = knn_accuracy(
        bank_features, bank_labels, test_features, test_labels, k=k, temperature=temperature
    )
    return KnnResult(
        accuracy=accuracy,
        train_samples=int(bank_features.shape[0]),
        test_samples=int(test_features.shape[0]),
        k=k,
    )


def _split_query(holdout: int, *, held_out: bool) -> str:
    """SQL selecting every ``holdout``-th sample of each label (or all the others)."""
    rank = "row_number() over (partition by label order by index) - 1"
    return f"select * qualify ({rank}) % {holdout} {'=' if held_out else '!='} 0 order by index"


def _loader(data: str | os.PathLike, sql: str | None, image_size: int, batch_size: int) -> Any:

    loader = Loader(data, seed=0)
    if sql is not None:
        loader = loader.query(sql)
    preset = EvalPreset(resize_size=round(image_size * 8 / 7), crop_size=image_size)
    return loader.batch(batch_size).shuffle(False), preset


def _batches(loader_and_preset: Any, num_workers: int, device: torch.device) -> Any:
    loader, preset = loader_and_preset
    with loader.preset(preset, device=device).pytorch(num_workers=num_workers) as running:
        yield from running
