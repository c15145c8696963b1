"""Synthetic task batches for smoke tests and examples (random images, token ids instead of a tokenizer).

Boxes are normalised ``cxcywh``; morphology attributes use ``config.morph_ignore_index`` for "not annotated".
"""
from __future__ import annotations

import torch


def synthetic_task_batches(config, batch_size: int = 2, det_size: int = 64, cls_size: int = 32, seed: int = 0,
                           tasks=("detection", "attributes", "segmentation", "classification", "vqa", "mlm")):
    g = torch.Generator().manual_seed(seed)
    vocab = config.text_config.vocab_size
    n_attr = len(config.morph_num_values)

    def image(size):
        return torch.randn(batch_size, 3, size, size, generator=g)

    def prompt(length=8):
        ids = torch.randint(2, vocab, (batch_size, length), generator=g)
        ids[:, -1] = 1  # T5 eos
        mask = torch.ones_like(ids)
        mask[0, length - 2 :] = 0  # some padding in the first prompt
        ids[0, length - 2 :] = 0
        return ids, mask

    def targets(with_attributes: bool):
        out = []
        for b in range(batch_size):
            n = 1 + (b % 3)
            centres = torch.rand(n, 2, generator=g) * 0.5 + 0.25
            sizes = torch.rand(n, 2, generator=g) * 0.2 + 0.1
            t = {
                "class_labels": torch.randint(0, config.num_det_classes, (n,), generator=g),
                "boxes": torch.cat([centres, sizes], -1),
            }
            if with_attributes:
                attrs = torch.stack(
                    [torch.randint(0, v, (n,), generator=g) for v in config.morph_num_values], -1
                ) if n_attr else torch.zeros(n, 0, dtype=torch.long)
                if n_attr:
                    attrs[0, 0] = config.morph_ignore_index  # one "not annotated" value
                t["attributes"] = attrs
            out.append(t)
        return out

    batches = {}
    for task in tasks:
        if task in ("detection", "attributes"):
            ids, mask = prompt()
            batches[task] = {"pixel_values": image(det_size), "labels": targets(task == "attributes"),
                             "input_ids": ids, "attention_mask": mask}
        elif task == "segmentation":
            ids, mask = prompt()
            masks = torch.zeros(batch_size, det_size, det_size)
            masks[:, det_size // 4 : det_size // 2, det_size // 4 : 3 * det_size // 4] = 1.0
            batches[task] = {"pixel_values": image(det_size), "masks": masks, "input_ids": ids, "attention_mask": mask}
        elif task == "classification":
            batches[task] = {"pixel_values": image(cls_size),
                             "class_labels": torch.randint(0, config.num_cls_classes, (batch_size,), generator=g)}
        elif task in ("vqa", "mlm"):
            ids, mask = prompt()
            labels = torch.randint(2, vocab, (batch_size, 5), generator=g)
            labels[:, -1] = 1
            labels[0, -2:] = -100
            batches[task] = {"pixel_values": image(cls_size), "input_ids": ids, "attention_mask": mask, "labels": labels}
        else:
            raise ValueError(task)
    return batches


def ddp_gradient_worker(rank: int, world_size: int, port: int, recipe_path: str, data_dir: str, out_file: str):
    """Two-process (gloo) data-parallel check, run by ``torch.multiprocessing.spawn``: one forward/backward of the
    :class:`~unihema_model.train.Trainer` on this rank's share of step 0; rank 0 saves the all-reduced gradients."""
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_WORLD_SIZE=str(world_size))
    from .train import Trainer, _to_device, load_recipe

    trainer = Trainer(load_recipe(recipe_path), data_dir, os.path.dirname(out_file), random_init=True, cpu=True,
                      progress=False, log=lambda m: None)
    acc = trainer.accelerator
    assert acc.num_processes == world_size
    trainer.model.eval()  # no dropout (T5's 0.1 differs per rank); gradients are still computed
    out = trainer.model(_to_device(trainer.batch_for(0, 0), acc.device))
    acc.backward(out.loss)
    if acc.is_main_process:
        model = acc.unwrap_model(trainer.model)
        torch.save({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, out_file)
        torch.save({n: p.detach().clone() for n, p in model.named_parameters()}, out_file + ".params")
    acc.wait_for_everyone()
    torch.distributed.destroy_process_group()
