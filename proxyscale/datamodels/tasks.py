"""The two attribution settings behind one interface: image classification and language modelling.

Examples (:mod:`proxyscale.datamodels.examples`) give inputs and labels a batch at a time. For images,
inputs are uint8 images (n, c, h, w) and labels class ids; for text, inputs are token windows (n, T + 1)
and labels the boolean mask of scored positions. A task turns them into models, training losses
(summed, with the count of terms they sum, so a batch in micro-batches has the same mean), model
outputs (the margins TRAK attributes and LDS compares) and traker batches, and counts FLOPs, so
training, featurizing and LDS code is shared. A language model's losses and outputs go through
:meth:`proxyscale.models.gpt.GPT.per_token`, so no batch's logits are ever held whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from proxyscale.errors import ConfigError, DataError
from proxyscale.losses import classification_margin, masked_mean, token_margins, token_nll_and_hit
from proxyscale.models.architecture import GPTConfig, count_parameters
from proxyscale.models.gpt import GPT
from proxyscale.models.vision import forward_macs, make_classifier, standardize
from proxyscale.training.checkpoints import read_checkpoint, save_checkpoint


@dataclass(frozen=True)
class VisionTask:
    """Classifier family ``family`` on images of ``image_shape`` with ``num_classes`` classes, fed images
    standardised with the training images' per-channel ``pixel_mean`` and ``pixel_std``."""

    family: str
    image_shape: tuple[int, int, int]
    num_classes: int
    pixel_mean: tuple[float, ...]
    pixel_std: tuple[float, ...]

    @property
    def modelout(self):
        """traker's output function of image classifiers (the margin of the true class)."""
        from trak.modelout_functions import ImageClassificationModelOutput

        return ImageClassificationModelOutput()

    def make_model(self, spec: dict) -> nn.Module:
        return make_classifier(self.family, spec["width"], self.image_shape[0], self.num_classes, self.image_shape[1])

    def host_batch(self, inputs: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.ascontiguousarray(inputs)), torch.from_numpy(np.asarray(labels)).long()

    def device_batch(self, host: tuple, device) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = (t.to(device, non_blocking=True) for t in host)
        return standardize(images, self.pixel_mean, self.pixel_std), labels

    def to_batch(self, inputs: np.ndarray, labels: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
        return self.device_batch(self.host_batch(inputs, labels), device)

    def loss_sum(self, model: nn.Module, batch) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y, reduction="sum")

    def loss_terms(self, labels: np.ndarray) -> int:
        return len(labels)

    def outputs(self, model: nn.Module, batch) -> torch.Tensor:
        x, y = batch
        return classification_margin(model(x).float(), y)

    def flops_per_example(self, model: nn.Module) -> float:
        """Forward FLOPs of one example (2 per multiply-accumulate)."""
        return 2.0 * forward_macs(model, self.image_shape)


@dataclass(frozen=True)
class LMTask:
    """GPT family (``proxyscale.models``) on token windows of ``context_length + 1`` tokens."""

    vocab_size: int
    context_length: int

    @property
    def modelout(self):
        """traker's output function; imported here so training jobs do not load traker."""
        from proxyscale.datamodels.outputs import LMMarginOutput

        return LMMarginOutput()

    def config(self, spec: dict) -> GPTConfig:
        """The architecture of a size spec on this task's vocabulary and context."""
        return GPTConfig.from_size(spec, self.vocab_size, self.context_length)

    def make_model(self, spec: dict) -> nn.Module:
        return GPT(self.config(spec))

    def host_batch(self, inputs: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.asarray(inputs)).long(), torch.from_numpy(np.asarray(labels)).bool()

    def device_batch(self, host: tuple, device) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(t.to(device, non_blocking=True) for t in host)

    def to_batch(self, inputs: np.ndarray, labels: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
        return self.device_batch(self.host_batch(inputs, labels), device)

    def loss_sum(self, model: nn.Module, batch) -> torch.Tensor:
        """Cross-entropy summed over the scored positions (``model`` may be DDP-wrapped: its forward with
        targets gives the per-token loss)."""
        tokens, mask = batch
        return (model(tokens[:, :-1], targets=tokens[:, 1:]) * mask[:, 1:]).sum()

    def loss_terms(self, labels: np.ndarray) -> int:
        return int(np.asarray(labels)[:, 1:].sum())

    def outputs(self, model: nn.Module, batch) -> torch.Tensor:
        tokens, mask = batch
        return masked_mean(model.per_token(tokens[:, :-1], tokens[:, 1:], token_margins), mask[:, 1:])

    def flops_per_example(self, model: nn.Module) -> float:
        """Forward FLOPs of one window: 2 x parameters x scored positions (the 6ND rule's forward third)."""
        return 2.0 * count_parameters(model.cfg) * self.context_length


def make_task(spec: dict) -> VisionTask | LMTask:
    """The task a dataset's spec (:mod:`proxyscale.datamodels.dataset`) describes."""
    if spec["setting"] == "vision":
        if "pixel_mean" not in spec:
            raise DataError(
                "the vision dataset's task.json has no pixel statistics (written by an older proxyscale): "
                "rebuild it with snakemake --forcerun attribution_data"
            )
        stats = tuple(spec["pixel_mean"]), tuple(spec["pixel_std"])
        return VisionTask(spec["family"], tuple(spec["image_shape"]), spec["num_classes"], *stats)
    if spec["setting"] == "lm":
        return LMTask(spec["vocab_size"], spec["context_length"])
    raise ConfigError(f"attribution.setting: '{spec['setting']}' is not a setting (vision, lm)")


def task_config(task, spec: dict) -> GPTConfig | None:
    """The GPT architecture of a size of a language task (what the memory model needs); None otherwise."""
    return task.config(spec) if isinstance(task, LMTask) else None


def batches(task, examples, indices: np.ndarray, batch_size: int, device) -> Iterator[tuple[np.ndarray, tuple]]:
    """(indices, batch) pairs over ``indices`` of ``examples`` in order, read a batch at a time, as
    traker's featurize and scoring take them."""
    for start in range(0, len(indices), batch_size):
        idx = np.asarray(indices[start : start + batch_size])
        yield idx, task.to_batch(*examples.take(idx), device)


def _all(task, examples, batch_size: int, device) -> Iterator[tuple]:
    return (b for _, b in batches(task, examples, np.arange(len(examples)), batch_size, device))


@torch.no_grad()
def outputs(task, model: nn.Module, examples, batch_size: int, device) -> np.ndarray:
    """The model's output (margin) on every example, as float64."""
    model.eval()
    return torch.cat([task.outputs(model, b).cpu() for b in _all(task, examples, batch_size, device)]).double().numpy()


@torch.no_grad()
def accuracy(task, model: nn.Module, examples, batch_size: int, device) -> float | None:
    """Top-1 accuracy of a classifier; None for language models (no single label to get right)."""
    if not isinstance(task, VisionTask):
        return None
    model.eval()
    hits = [(model(x).argmax(-1) == y).sum().item() for x, y in _all(task, examples, batch_size, device)]
    return float(sum(hits) / len(examples))


@torch.no_grad()
def token_metrics(task: LMTask, model: nn.Module, examples, batch_size: int, device) -> tuple[np.ndarray, np.ndarray]:
    """Per language example: mean cross-entropy over its scored tokens, and the fraction of those
    tokens that are the model's argmax prediction (token accuracy)."""
    model.eval()
    losses, hits = [], []
    for tokens, mask in _all(task, examples, batch_size, device):
        both = model.per_token(tokens[:, :-1], tokens[:, 1:], token_nll_and_hit)
        losses.append(masked_mean(both[..., 0], mask[:, 1:]).cpu())
        hits.append(masked_mean(both[..., 1], mask[:, 1:]).cpu())
    return torch.cat(losses).double().numpy(), torch.cat(hits).double().numpy()


def save_model(model: nn.Module, task_spec: dict, size_spec: dict, meta: dict, path) -> None:
    """Checkpoint with everything needed to rebuild the model: the task and size specs."""
    save_checkpoint(path, model, meta, task=task_spec, size=size_spec)


def load_model(path, device: torch.device | str = "cpu") -> tuple[nn.Module, VisionTask | LMTask, dict]:
    """Model (eval mode), its task and its training summary, from :func:`save_model`."""
    blob = read_checkpoint(path, device, needs=("task", "size"))
    task = make_task(blob["task"])
    model = task.make_model(blob["size"]).to(device)
    model.load_state_dict(blob["state_dict"])
    return model.eval(), task, blob["meta"]
