"""datadings' sample types: the 15 documented constructors of ``datadings.sets.types``.

Each function builds one sample (or one experiment inside a sample) as a plain dict whose keys are
its argument names, in argument order, each holding the argument as passed: the same names,
signatures and dicts as datadings 3.4.7, so writers and user code that build samples with them
produce the same msgpack records. Arguments may be given by position or by name; nothing is
checked or copied (a writer validates what it packs).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ADE20kData",
    "ANP460Data",
    "ANP460Experiment",
    "ImageClassificationData",
    "ImageCoarseClassificationData",
    "ImageData",
    "ImageDisparitySegmentationData",
    "ImageInstanceSegmentationData",
    "ImageNet21kData",
    "ImageSegmentationData",
    "MaskedImageSegmentationData",
    "Places2017Data",
    "SaliencyData",
    "SaliencyExperiment",
    "SaliencyTimeseriesExperiment",
]


def ADE20kData(
    key: Any, image: Any, label: Any, label_image: Any, parts_images: Any
) -> dict[str, Any]:
    """Make an ADE20k scene-parsing sample: the image, its scene label, the object label image
    and the part label images.

    Returns:
        A new dict with the keys ``key``, ``image``, ``label``, ``label_image``, ``parts_images``,
        in this order, each holding its argument as passed (no copy, no check); nothing is raised.
    """
    return {
        "key": key,
        "image": image,
        "label": label,
        "label_image": label_image,
        "parts_images": parts_images,
    }


def ANP460Data(key: Any, image: Any, experiments: Any, anp: Any, type: Any) -> dict[str, Any]:
    """Make an ANP460 saliency sample: the image, its eye-tracking experiments, the
    adjective-noun pair and its type.

    Returns:
        A new dict with the keys ``key``, ``image``, ``experiments``, ``anp``, ``type``, in this
        order, each holding its argument as passed (no copy, no check); nothing is raised.
    """
    return {"key": key, "image": image, "experiments": experiments, "anp": anp, "type": type}


def ANP460Experiment(locations: Any, map: Any, answer: Any, duration: Any) -> dict[str, Any]:
    """Make one ANP460 eye-tracking experiment: fixation locations, the fixation map, the
    observer's answer and the viewing duration.

    Returns:
        A new dict with the keys ``locations``, ``map``, ``answer``, ``duration``, in this order,
        each holding its argument as passed (no copy, no check); nothing is raised.
    """
    return {"locations": locations, "map": map, "answer": answer, "duration": duration}


def ImageClassificationData(key: Any, image: Any, label: Any) -> dict[str, Any]:
    """Make an image classification sample: the image and its class label.

    Returns:
        A new dict with the keys ``key``, ``image``, ``label``, in this order, each holding its
        argument as passed (no copy, no check); nothing is raised.
    """
    return {"key": key, "image": image, "label": label}


def ImageCoarseClassificationData(
    key: Any, image: Any, label: Any, coarse_label: Any
) -> dict[str, Any]:
    """Make a classification sample with a fine and a coarse class label (CIFAR100).

    Returns:
        A new dict with the keys ``key``, ``image``, ``label``, ``coarse_label``, in this order,
        each holding its argument as passed (no copy, no check); nothing is raised.
    """
    return {"key": key, "image": image, "label": label, "coarse_label": coarse_label}


def ImageData(key: Any, image: Any) -> dict[str, Any]:
    """Make an unlabelled image sample.

    Returns:
        A new dict with the keys ``key``, ``image``, in this order, each holding its argument as
        passed (no copy, no check); nothing is raised.
    """
    return {"key": key, "image": image}


def ImageDisparitySegmentationData(
    key: Any, image: Any, label_image: Any, disparity_image: Any
) -> dict[str, Any]:
    """Make a segmentation sample with a disparity image (Cityscapes).

    Returns:
        A new dict with the keys ``key``, ``image``, ``label_image``, ``disparity_image``, in this
        order, each holding its argument as passed (no copy, no check); nothing is raised.
    """
    return {
        "key": key,
        "image": image,
        "label_image": label_image,
        "disparity_image": disparity_image,
    }


def ImageInstanceSegmentationData(
    key: Any, image: Any, label_image: Any, instance_image: Any
) -> dict[str, Any]:
    """Make a segmentation sample with an instance image.

    Returns:
        A new dict with the keys ``key``, ``image``, ``label_image``, ``instance_image``, in this
        order, each holding its argument as passed (no copy, no check); nothing is raised.
    """
    return {
        "key": key,
        "image": image,
        "label_image": label_image,
        "instance_image": instance_image,
    }


def ImageNet21kData(key: Any, image: Any, label: Any, label_tree: Any) -> dict[str, Any]:
    """Make an ImageNet21k sample: the image, its label and the label's path in the synset tree.

    Returns:
        A new dict with the keys ``key``, ``image``, ``label``, ``label_tree``, in this order, each
        holding its argument as passed (no copy, no check); nothing is raised.
    """
    return {"key": key, "image": image, "label": label, "label_tree": label_tree}


def ImageSegmentationData(key: Any, image: Any, label_image: Any) -> dict[str, Any]:
    """Make a semantic segmentation sample: the image and its label image.

    Returns:
        A new dict with the keys ``key``, ``image``, ``label_image``, in this order, each holding
        its argument as passed (no copy, no check); nothing is raised.
    """
    return {"key": key, "image": image, "label_image": label_image}


def MaskedImageSegmentationData(
    key: Any, image: Any, label_image: Any, mask: Any
) -> dict[str, Any]:
    """Make a segmentation sample with a mask (Vaihingen stores heights there).

    Returns:
        A new dict with the keys ``key``, ``image``, ``label_image``, ``mask``, in this order, each
        holding its argument as passed (no copy, no check); nothing is raised.
    """
    return {"key": key, "image": image, "label_image": label_image, "mask": mask}


def Places2017Data(
    key: Any, image: Any, label: Any, label_image: Any, instance_image: Any, boundary: Any
) -> dict[str, Any]:
    """Make a Places2017 scene-parsing sample: the image, scene label, label image, instance
    image and boundary flag.

    Returns:
        A new dict with the keys ``key``, ``image``, ``label``, ``label_image``, ``instance_image``,
        ``boundary``, in this order, each holding its argument as passed (no copy, no check);
        nothing is raised.
    """
    return {
        "key": key,
        "image": image,
        "label": label,
        "label_image": label_image,
        "instance_image": instance_image,
        "boundary": boundary,
    }


def SaliencyData(key: Any, image: Any, experiments: Any) -> dict[str, Any]:
    """Make a saliency sample: the image and its eye-tracking experiments.

    Returns:
        A new dict with the keys ``key``, ``image``, ``experiments``, in this order, each holding
        its argument as passed (no copy, no check); nothing is raised.
    """
    return {"key": key, "image": image, "experiments": experiments}


def SaliencyExperiment(locations: Any, map: Any) -> dict[str, Any]:
    """Make one eye-tracking experiment: fixation locations and the fixation map.

    Returns:
        A new dict with the keys ``locations``, ``map``, in this order, each holding its argument as
        passed (no copy, no check); nothing is raised.
    """
    return {"locations": locations, "map": map}


def SaliencyTimeseriesExperiment(
    locations: Any, map: Any, timestamps: Any, fixations: Any
) -> dict[str, Any]:
    """Make one eye-tracking experiment with the fixations' timestamps and the fixation
    sequence.

    Returns:
        A new dict with the keys ``locations``, ``map``, ``timestamps``, ``fixations``, in this
        order, each holding its argument as passed (no copy, no check); nothing is raised.
    """
    return {"locations": locations, "map": map, "timestamps": timestamps, "fixations": fixations}
