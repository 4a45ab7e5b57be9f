"""Datasets as numpy arrays, prepared as the CLI prepares them."""

from __future__ import annotations

import os
from typing import Optional, Tuple, Union

import numpy as np

from . import _prospect

__all__ = ["load"]


def load(
    name: str,
    split: str = "train",
    scale: str = "unit",
    data_dir: Union[str, os.PathLike, None] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """A split of a dataset: ``(x, labels)``, ``x`` float32 ``[n, features]`` (images in
    the HWC order the engine uses when a config gives the input node an image shape, else
    the file's order), ``labels`` uint32 ``[n]``.

    Args:
        name: ``digits`` (bundled), ``mnist``, ``fashion-mnist``, ``cifar10``, ... (fetch
            them first: ``prospect data fetch NAME``).
        split: ``"train"`` or ``"test"``.
        scale: ``"unit"`` ([0, 1]), ``"symmetric"`` ([-1, 1]), ``"standardize"`` or ``"none"``,
            as ``data.scale`` in a config.
        data_dir: directory holding the files (default: ``$PROSPECT_DATA/<name>`` or
            ``data/<name>``).
    """
    return _prospect.load_data(
        name, split, scale, None if data_dir is None else os.fspath(data_dir)
    )
