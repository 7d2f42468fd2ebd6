"""Image classification on raw data: the task, training from a folder or synthetic dataset,
prediction and evaluation (what ``rawcv train|predict|eval classify`` run).

>>> from rawcv.train.classify import train_classifier, predict_files, evaluate_classifier
>>> result = train_classifier("shapes/", out="runs/shapes", model="resnet18",       # doctest: +SKIP
...                           model_kwargs={"width": 16}, epochs=10)
>>> for path, pred in predict_files("runs/shapes/best.pt", ["img.dng"]):            # doctest: +SKIP
...     print(path, pred["label"], pred["top_k"])
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset

from ..errors import OutputExistsError, RawcvError
from .checkpoint import BEST_NAME if False else None  # noqa  (placeholder removed below)
