"""The evaluation protocol's k fresh networks trained together, as one batched network.

:func:`train_classifiers_batched` trains k ConvNets with plain cross-entropy at once: their
parameters are stacked along a new leading axis and one ``torch.func.vmap`` of
``functional_call`` runs all k forward and backward passes in one go (one kernel launch per layer
instead of k). Everything else stays per model, exactly as :func:`~ddlib.training.loop.train_classifier`
does it for one: each network has its own initialisation (stream ``model-init`` of its seed), its
own shuffling (``shuffle``) and its own per-sample augmentation (``dsa``). SGD with momentum and
weight decay acts elementwise, so one optimiser over the stacked tensors is k independent ones.
The result equals k sequential trainings up to floating-point rounding (batched kernels may sum
in another order); ``tests/test_batched_evaluation.py`` checks it on the CPU.

Only the default :class:`~ddlib.training.objectives.CrossEntropy` objective has this path; other
objectives (several networks, per-sample state) train one run after another.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ddlib.augment import DSA
from ddlib.core.progress import bar_label, progress
from ddlib.core.seeding import torch_generator
from ddlib.datasets import BiasedDataset
from ddlib.training.loop import as_float
from ddlib.training.objectives import TrainConfig, TrainingSetup


def train_classifiers_batched(dataset: BiasedDataset, images: torch.Tensor, labels: torch.Tensor,
                              config: TrainConfig, seeds: list[int], device: torch.device,
                              show_progress: bool = False, desc: str = "train") -> list[nn.Module]:
    """Train one fresh ConvNet per seed on ``images`` / ``labels`` with cross-entropy, all at once;
    returns the k trained networks (in eval mode), each as ``train_classifier`` would give it."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if not seeds:
        raise ValueError("train_classifiers_batched needs at least one seed")
    device = torch.device(device)
    n, labels = len(images), labels.long().to(device)
    images = images.to(device)  # uint8 stays uint8 (normalised per batch, as in the sequential loop)
    setups = [TrainingSetup(dataset, config, n, seed, device) for seed in seeds]
    nets = [s.build_convnet("model-init") for s in setups]
    params, buffers = stack_module_state(nets)
    template = copy.deepcopy(nets[0]).to("meta")

    def forward(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(template, (p, b), (x,))

    batched_forward = vmap(forward)
    optimizer = setups[0].sgd(list(params.values()))
    scheduler = setups[0].halving_schedule(optimizer)
    shuffle_gens = [torch_generator(seed, "shuffle") for seed in seeds]
    aug_gens = [torch_generator(seed, "dsa") for seed in seeds]
    dsa = DSA(dataset.dsa_strategy) if config.dsa else None
    for _ in progress(range(config.epochs), desc=bar_label(dataset, desc), disable=not show_progress, leave=False):
        orders = [torch.randperm(n, generator=g).to(device) for g in shuffle_gens]
        for start in range(0, n, config.batch_size):
            xs, ys = [], []
            for order, aug_gen in zip(orders, aug_gens):
                batch = order[start:start + config.batch_size]
                x = as_float(dataset, images[batch], device)
                xs.append(dsa(x, aug_gen) if dsa is not None else x)
                ys.append(labels[batch])
            logits = batched_forward(params, buffers, torch.stack(xs))  # [k, B, classes]
            y = torch.stack(ys)
            # the sum of the k mean losses: each network's gradient is that of its own loss
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).mean(1).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
    with torch.no_grad():
        for k, net in enumerate(nets):
            for name, p in net.named_parameters():
                p.copy_(params[name][k])
    return [net.eval() for net in nets]
