"""The batch side of :class:`~shardstream.vision.dino.DinoPreset`: collation in the workers and the
device step (colour, normalisation and the crop-major layout of dinov2's ``collate_data_and_cast``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..engine.collate import default_collate
from ..engine.scratch import FRESH, BatchBuffers
from .collate import collate_masks
from .colour_cpu import normalize_uint8
from .device_resize import shipped_views
from .device_views import collate_shipped
from .photometric import PARAM_KEYS, PhotometricRecipe, apply_photometric, normalize
from .preset_fields import sample_field

__all__ = ["DinoBatchSteps"]


class DinoBatchSteps:
    """Collation and the device step of the DINO preset (its dataclass supplies the settings)."""

    dtype: torch.dtype
    colour: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    masks: bool
    label_field: str | None
    local_crops_number: int
    global_crops_size: int
    local_crops_size: int
    patch_size: int
    resize: str
    decode: str

    #: the colour recipe of each view kind (``global_1``, ``global_2``, ``local``)
    recipes: Mapping[str, PhotometricRecipe]

    def _sizes(self) -> list[tuple[int, int]]:
        raise NotImplementedError

    def collate(
        self, samples: Sequence[Mapping[str, Any]], buffers: BatchBuffers = FRESH
    ) -> dict[str, Any]:
        """Merge a batch's worker outputs (in the workers; the loader calls this).

        With ``colour="workers"`` the views are already coloured: they are laid out crop-major
        (every sample's first global crop, then every sample's second; the local crops
        likewise) and normalised to float32 by table lookup straight into that layout, as
        ``collated_global_crops`` / ``collated_local_crops``, so the consuming process only
        casts to ``dtype``. Otherwise (colour on the device) this is the default collation.

        Args:
            samples: :meth:`worker` outputs (``SKIPPED`` samples already removed), at least one.
            buffers: where the batch's arrays are made (the engine's; new arrays by default).

        Returns:
            The batch of arrays :meth:`device` takes.

        Raises:
            CollateError: the samples differ in fields or shapes.
        """

        if self.resize == "device":
            return collate_shipped(samples, buffers)
        if self.colour != "workers":
            return default_collate(samples, buffers=buffers)
        views = ("global_crops", "local_crops")
        skip = (*views, "photometric")  # applied already
        batch = default_collate(
            [{k: v for k, v in s.items() if k not in skip} for s in samples], buffers=buffers
        )
        for name in views:
            first = samples[0][name]  # (views, 3, S, S) uint8
            shape = (first.shape[0], len(samples), *first.shape[1:])
            crops = np.stack(  # crop-major: (views, B, 3, S, S)
                [sample[name] for sample in samples],
                axis=1,
                out=buffers.array(f"{name}_uint8", shape, np.uint8, temporary=True),
            )
            flat = crops.reshape(-1, *shape[2:])
            batch[f"collated_{name}"] = normalize_uint8(
                flat, self.mean, self.std, out=buffers.array(name, flat.shape, np.float32)
            )
        return batch

    def device(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Colour, normalise and collate a batch of worker outputs on its device.

        Args:
            batch: the collated worker outputs (tensors with a leading batch axis ``B``) on
                the training device; in the device modes their payload, whose views are cut,
                resized (torch's antialiased bicubic) and flipped here first
                (:func:`~shardstream.vision.device_resize.shipped_views`).

        Returns:
            dinov2's collated dict: ``collated_global_crops`` (``(2B, 3, G, G)``, ``dtype``:
            every sample's first global crop, then every sample's second),
            ``collated_local_crops`` (``(N * B, 3, L, L)``, ``dtype``, crop-major likewise),
            ``collated_masks`` (bool ``(2B, (G / p) ** 2)``), ``mask_indices_list``,
            ``masks_weight``, ``upperbound`` (a Python int) and ``n_masked_patches`` (the mask
            keys only when masks are on), and ``labels`` (int64 ``(B,)``) when the preset has
            a label field.

        Raises:
            MissingFieldError: the batch lacks a field the worker makes.
            ImageDecodeError: ``decode="device"`` and a JPEG of the batch does not decode.
        """
        if "collated_global_crops" in batch:  # coloured and laid out by :meth:`collate`
            out: dict[str, Any] = {
                name: batch[name].to(self.dtype)
                for name in ("collated_global_crops", "collated_local_crops")
            }
            if not self.local_crops_number:
                out["collated_local_crops"] = torch.empty((0,), dtype=self.dtype)
            return self._finish(batch, out)
        if "payload" in batch:  # resize="device" / decode="device": cut the views here first
            cut = shipped_views(batch, self._sizes(), "bicubic")
            size = self.local_crops_size
            local = (
                torch.stack(cut[2:], 1)
                if self.local_crops_number
                else cut[0].new_empty((cut[0].shape[0], 0, 3, size, size))
            )
            batch = {**batch, "global_crops": torch.stack(cut[:2], 1), "local_crops": local}
        global_crops = sample_field(batch, "global_crops")
        local_crops = sample_field(batch, "local_crops")
        params = sample_field(batch, "photometric")
        size = self.global_crops_size
        count = global_crops.shape[0]
        collated_global = torch.empty(
            (2 * count, 3, size, size), dtype=self.dtype, device=global_crops.device
        )
        coloured_already = self.colour == "workers"  # uint8 (or normalised float32) views
        for view, kind in enumerate(("global_1", "global_2")):
            if coloured_already:
                coloured = global_crops[:, view]
                if not coloured.is_floating_point():
                    coloured = normalize(coloured, self.mean, self.std)
            else:
                coloured = apply_photometric(
                    global_crops[:, view], params[kind], self.recipes[kind]
                )
            rows = slice(view * count, (view + 1) * count)
            if not coloured_already:
                coloured = normalize(coloured, self.mean, self.std)
            collated_global[rows] = coloured
        out = {"collated_global_crops": collated_global}
        if self.local_crops_number:
            views = _crop_major(local_crops)
            if coloured_already:
                coloured = views
                if not coloured.is_floating_point():
                    coloured = normalize(views, self.mean, self.std)
            else:
                local_params = {key: _crop_major(params["local"][key]) for key in PARAM_KEYS}
                coloured = apply_photometric(views, local_params, self.recipes["local"])
                normalize(coloured, self.mean, self.std, inplace=True)
            out["collated_local_crops"] = coloured.to(self.dtype)
        else:  # what the reference collate gives for no local crops
            out["collated_local_crops"] = torch.empty((0,), dtype=self.dtype)
        return self._finish(batch, out)

    def _finish(self, batch: Mapping[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        """Add the mask keys and the labels to the collated crops ``out``."""

        if self.masks:
            upperbound = int(sample_field(batch, "mask_upperbound").sum())
            out.update(collate_masks(sample_field(batch, "masks"), upperbound))
        if self.label_field is not None:
            out["labels"] = sample_field(batch, self.label_field)
        return out


def _crop_major(values: torch.Tensor) -> torch.Tensor:
    """``(B, N, ...)`` per-sample views as ``(N * B, ...)``: every sample's view 0, then 1, ..."""
    return values.transpose(0, 1).reshape(-1, *values.shape[2:])
