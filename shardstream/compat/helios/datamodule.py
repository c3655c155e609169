"""helios' ``DataModule``: one place that builds a model's train, validation and test data.

A trainer drives it in this order: ``prepare_data()`` once on the primary process (download,
cache; no state), then sets ``is_distributed`` and ``trainer``, calls ``setup()`` (which builds
the data sets), takes loaders from ``train_dataloader()`` / ``valid_dataloader()`` /
``test_dataloader()`` (each call builds a new ``(DataLoader, sampler)``), and finally calls
``teardown()``. ``state_dict()`` records the active training phase for checkpoints.

The API is helios 2.0's: data sets are registered with ``_add_train_phase`` (one or more training
phases), ``_add_valid_dataset`` and ``_add_test_dataset``. helios 1.x's
``self._train_dataset = self._create_dataset(...)`` form is gone in 2.0 and here.

Difference from helios: reading ``trainer`` before one was assigned raises
:class:`~shardstream.errors.NotReadyError` (helios: a bare ``assert``).
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Mapping
from typing import Any

from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from ...errors import NotReadyError
from .dataloader import DataLoaderParams, Dataset, create_dataloader
from .resumable import ResumableSamplerType

__all__ = ["DataModule"]


class DataModule(abc.ABC):
    """Base class that builds the data sets and loaders of a training run (helios' API).

    Subclasses implement :meth:`setup`, registering data sets with :meth:`_add_train_phase`,
    :meth:`_add_valid_dataset` and :meth:`_add_test_dataset` (helios 2.0). ``params`` is a
    :class:`DataLoaderParams` (copied) or a dict of its fields (see
    :meth:`DataLoaderParams.from_dict`).

    Example::

        class MyDataModule(DataModule):
            def setup(self) -> None:
                self._add_train_phase(train_set, DataLoaderParams(batch_size=32, shuffle=True))
                self._add_valid_dataset(valid_set, {"batch_size": 64})
    """

    def __init__(self) -> None:
        self._is_distributed: bool = False
        self._train_dataset: Dataset | None = None
        self._valid_dataset: Dataset | None = None
        self._test_dataset: Dataset | None = None
        self._trainer: Any | None = None
        self._train_phases: list[Dataset] = []
        self._current_train_phase: int = 0

    @property
    def is_distributed(self) -> bool:
        """Whether training is distributed; decides the sampler of params whose
        ``is_distributed`` is ``None``."""
        return self._is_distributed

    @is_distributed.setter
    def is_distributed(self, value: bool) -> None:
        self._is_distributed = value

    @property
    def trainer(self) -> Any:
        """The trainer that drives this module.

        Raises:
            NotReadyError: no trainer has been assigned.
        """
        if self._trainer is None:
            raise NotReadyError(
                f"{type(self).__name__}.trainer was read before a trainer was assigned "
                "(set datamodule.trainer first)"
            )
        return self._trainer

    @trainer.setter
    def trainer(self, trainer: Any) -> None:
        self._trainer = trainer

    @property
    def train_dataset(self) -> TorchDataset | None:
        """The active training data set, or ``None``."""
        return None if self._train_dataset is None else self._train_dataset.dataset

    @property
    def valid_dataset(self) -> TorchDataset | None:
        """The validation data set, or ``None``."""
        return None if self._valid_dataset is None else self._valid_dataset.dataset

    @property
    def test_dataset(self) -> TorchDataset | None:
        """The test data set, or ``None``."""
        return None if self._test_dataset is None else self._test_dataset.dataset

    def prepare_data(self) -> None:
        """Prepare the data (download, build caches); does nothing by default.

        Called once on the primary process before distributed processes start, so it must not
        store state on the module.
        """

    @abc.abstractmethod
    def setup(self) -> None:
        """Build the data sets (the trainer has set ``is_distributed`` and ``trainer``)."""

    def teardown(self) -> None:
        """Release what :meth:`setup` built, after training or testing; does nothing by default."""

    def train_dataloader(self) -> tuple[DataLoader, ResumableSamplerType] | None:
        """A new loader and sampler for the active training data set.

        Returns:
            ``(loader, sampler)``, or ``None`` when there is no training data set.
        """
        return None if self._train_dataset is None else self._create_dataloader(self._train_dataset)

    def valid_dataloader(self) -> tuple[DataLoader, ResumableSamplerType] | None:
        """A new loader and sampler for the validation data set.

        Returns:
            ``(loader, sampler)``, or ``None`` when there is no validation data set.
        """
        return None if self._valid_dataset is None else self._create_dataloader(self._valid_dataset)

    def test_dataloader(self) -> tuple[DataLoader, ResumableSamplerType] | None:
        """A new loader and sampler for the test data set.

        Returns:
            ``(loader, sampler)``, or ``None`` when there is no test data set.
        """
        return None if self._test_dataset is None else self._create_dataloader(self._test_dataset)

    def get_train_steps_per_epoch(self) -> int:
        """Batches per training epoch: the length of a newly built training loader.

        Returns:
            ``len(train_loader)``.

        Raises:
            NotReadyError: there is no training data set (a ``RuntimeError``, as in helios).
        """
        result = self.train_dataloader()
        if result is None:
            raise NotReadyError(
                "get_train_steps_per_epoch() called but no training dataset has been configured."
            )
        return len(result[0])

    def advance_train_phase(self) -> None:
        """Make the next training phase active; does nothing at the last phase (or with none)."""
        if self._current_train_phase >= len(self._train_phases) - 1:
            return
        self._current_train_phase += 1
        self._train_dataset = self._train_phases[self._current_train_phase]

    def state_dict(self) -> dict[str, Any]:
        """The module's state for a checkpoint.

        Returns:
            ``{"phase": index}`` of the active training phase, or ``{}`` when no phases were
            added.
        """
        if not self._train_phases:
            return {}
        return {"phase": self._current_train_phase}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Make the saved training phase active again.

        Ignored when no phases were added or the state has no ``"phase"``.

        Args:
            state_dict: a :meth:`state_dict` result.
        """
        if not self._train_phases or "phase" not in state_dict:
            return
        self._current_train_phase = state_dict["phase"]
        self._train_dataset = self._train_phases[self._current_train_phase]

    def _add_train_phase(
        self, dataset: TorchDataset, params: DataLoaderParams | Mapping[str, Any]
    ) -> None:
        """Add a training phase; the first one added becomes the active training data set."""
        self._train_phases.append(_paired(dataset, params))
        if len(self._train_phases) == 1:
            self._train_dataset = self._train_phases[0]

    def _add_valid_dataset(
        self, dataset: TorchDataset, params: DataLoaderParams | Mapping[str, Any]
    ) -> None:
        """Set (or replace) the validation data set."""
        self._valid_dataset = _paired(dataset, params)

    def _add_test_dataset(
        self, dataset: TorchDataset, params: DataLoaderParams | Mapping[str, Any]
    ) -> None:
        """Set (or replace) the test data set."""
        self._test_dataset = _paired(dataset, params)

    def _create_dataloader(self, dataset: Dataset) -> tuple[DataLoader, ResumableSamplerType]:
        """Build a loader; params with ``is_distributed=None`` take the module's flag (stored)."""
        if dataset.params.is_distributed is None:
            dataset.params.is_distributed = self._is_distributed
        return create_dataloader(**dataset.dict())


def _paired(dataset: TorchDataset, params: DataLoaderParams | Mapping[str, Any]) -> Dataset:
    """Pair a data set with loader parameters (a :class:`DataLoaderParams` is deep-copied; a
    dict goes through :meth:`DataLoaderParams.from_dict`). A function, not a method, so that a
    subclass's own ``_create_dataset`` (a free name in helios 2.0) is never called by mistake."""
    if isinstance(params, DataLoaderParams):
        return Dataset(dataset, copy.deepcopy(params))
    return Dataset(dataset, DataLoaderParams.from_dict(params))
