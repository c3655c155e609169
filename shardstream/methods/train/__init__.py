"""Training with shardstream's loader: the DINO loop, checkpoints, k-NN evaluation, torchrun."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import DinoTrainConfig
from .evaluate import KnnResult, evaluate_knn, model_from_checkpoint
from .knn import extract_embeddings, knn_accuracy, knn_predict
from .loop import TrainResult, build_loader, build_model, train_dino

__all__ = [
    "DinoTrainConfig",
    "KnnResult",
    "TrainResult",
    "build_loader",
    "build_model",
    "evaluate_knn",
    "extract_embeddings",
    "knn_accuracy",
    "knn_predict",
    "load_checkpoint",
    "model_from_checkpoint",
    "save_checkpoint",
    "train_dino",
]
