"""dinov2's ``dinov2.data`` on shardstream: its loaders, samplers, datasets and transforms.

Module paths mirror dinov2's: ``loaders`` (``make_dataset``, ``make_data_loader``,
``SamplerType``), ``samplers`` (``EpochSampler``, ``InfiniteSampler``,
``ShardedInfiniteSampler``), ``datasets`` and ``transforms``. The augmentation, masks and collate
(``DataAugmentationDINO``, ``MaskingGenerator``, ``collate_data_and_cast``) are shardstream's own
DINO pipeline and live in :mod:`shardstream.vision`. The modules that need torch import it;
this package imports none of them, so ``SamplerType`` stays torch-free.
"""
