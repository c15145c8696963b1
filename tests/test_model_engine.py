"""Training engine: exact resume, data-parallel (gloo, 2 CPU processes) = single process on the same global
batch, stage recipes, --init-from chaining, epoch sampler."""
from __future__ import annotations

import os
import socket

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from unihema_data.schema import ARROW_SCHEMA
from unihema_model.train import MultiTaskEpochSampler, Trainer, load_recipe

from test_model_train import RECIPE, _rows  # noqa: E402  (tests/ is on sys.path under pytest)

import numpy as np



@pytest.fixture()
def corpus(tmp_path):
    out = tmp_path / "corpus" / "data" / "toy"
    out.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(_rows(np.random.default_rng(0)), schema=ARROW_SCHEMA),
                   out / "train-00000-of-00001.parquet")
    return tmp_path / "corpus"


def _recipe(tmp_path, name="r.yaml", **train):
    raw = yaml.safe_load(RECIPE)
    raw["train"].update(train)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return load_recipe(path)


def _run(recipe, corpus, out, **kw):
    return Trainer(recipe, corpus, out, progress=False, log=lambda m: None, cpu=True, **kw).train()


def test_resume_continues_bit_identically(corpus, tmp_path):
    from safetensors.torch import load_file

    recipe = _recipe(tmp_path, save_every_steps=2, max_steps=4)
    _run(recipe, corpus, tmp_path / "straight")
    recipe.train.max_steps = 2
    _run(recipe, corpus, tmp_path / "split")
    ckpt = tmp_path / "split" / "checkpoints" / "step-00000002"
    assert (ckpt / "trainer_state.json").is_file()
    recipe.train.max_steps = 4
    _run(recipe, corpus, tmp_path / "split", resume=ckpt)
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "split" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    steps = [__import__("json").loads(line)["step"] for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(os.environ.get("UNIHEMA_SLOW") != "1", reason="spawns 2 processes (~45 s); set UNIHEMA_SLOW=1")
def test_two_process_gloo_matches_single_process_gradients(tmp_path):
    from unihema_model.testing import ddp_gradient_worker

    # the two detection images get 2 and 1 boxes: only a box count averaged over processes (DETR's all-reduce)
    # makes the per-process normalisers agree with the single-process one
    rows = _rows(np.random.default_rng(0))
    rows[3]["objects"] = {k: v[:1] for k, v in rows[3]["objects"].items()}
    data = tmp_path / "corpus" / "data" / "toy"
    data.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=ARROW_SCHEMA), data / "train-00000-of-00001.parquet")
    corpus = tmp_path / "corpus"

    raw = yaml.safe_load(RECIPE)
    raw["model"]["overrides"]["scfe_dropout"] = 0.0
    raw["data"]["detection_augment"] = None  # augmentation draws per rank; compare on fixed inputs
    raw["train"].update(tasks=["detection", "classification", "segmentation"], per_task_batch=1)
    two = tmp_path / "two.yaml"
    two.write_text(yaml.safe_dump(raw))
    raw["train"]["per_task_batch"] = 2
    one = tmp_path / "one.yaml"
    one.write_text(yaml.safe_dump(raw))
    out = tmp_path / "ddp" / "grads.pt"
    out.parent.mkdir()
    torch.multiprocessing.spawn(ddp_gradient_worker, args=(2, _free_port(), str(two), str(corpus), str(out)),
                                nprocs=2, join=True)
    ddp = torch.load(out)
    single = Trainer(load_recipe(one), corpus, tmp_path / "single", random_init=True, cpu=True, progress=False,
                     log=lambda m: None)
    from unihema_model.train import _to_device

    batch = single.batch_for(0, 0)  # = rank 0's row + rank 1's row
    single.model.eval()  # as the workers: no dropout
    single.accelerator.backward(single.model(_to_device(batch, "cpu")).loss)
    grads = {n: p.grad for n, p in single.model.named_parameters() if p.grad is not None}
    params = torch.load(str(out) + ".params")
    assert all(torch.equal(p.detach(), params[n]) for n, p in single.model.named_parameters())  # same start
    assert grads.keys() == ddp.keys() and len(grads) > 20
    for name in grads:  # equal up to float summation order (a wrong normaliser is off by tens of percent)
        diff, scale = float((ddp[name] - grads[name]).norm()), float(grads[name].norm())
        assert diff <= 1e-3 * scale + 1e-6, (name, diff, scale)  # + 1e-6: grads that are 0 up to rounding


def test_epoch_sampler_is_stateless_disjoint_and_covers_the_largest_task():
    by_task = {"classification": list(range(10)), "vqa": list(range(3))}
    world = [MultiTaskEpochSampler(by_task, ["classification", "vqa"], 2, seed=1, world_size=2, rank=r) for r in (0, 1)]
    assert world[0].steps_per_epoch == 3  # ceil(10 / (2 * 2))
    seen = [x for s in range(3) for w in world for x in w.picks(0, s)["classification"]]
    assert sorted(seen[:10]) == list(range(10))  # one pass over the largest task per epoch, no repeats
    again = MultiTaskEpochSampler(by_task, ["classification", "vqa"], 2, seed=1, world_size=2, rank=1)
    assert again.picks(0, 2) == world[1].picks(0, 2)  # no hidden state: any step can be recomputed
    assert world[0].picks(1, 0) != world[0].picks(0, 0) or world[0].picks(1, 1) != world[0].picks(0, 1)


STAGE_RECIPES = [f"stage{i}" for i in range(1, 7)] + ["smoke_cpu", "hemblip_lora"]


@pytest.mark.parametrize("name", STAGE_RECIPES)
def test_each_stage_recipe_runs_one_step_with_random_init(name, corpus, tmp_path):
    """Each shipped recipe, as written (stage, tasks, freezing, optimiser, LoRA), one CPU step with random weights.
    The paper-size model is swapped for the tiny preset and small images (a full-size step is covered by
    test_model_learning.test_paper_size_vqa_step_and_generate_on_cpu)."""
    recipe = load_recipe(name)  # packaged recipe (unihema_model/recipes/<name>.yaml)
    recipe.model.preset = "tiny"
    recipe.model.overrides = {"num_queries": 12, "dn_number": 4}
    recipe.data.image_size = {k: (64 if k in ("detection", "attributes", "segmentation") else 32)
                              for k in ("detection", "attributes", "segmentation", "classification", "vqa", "mlm",
                                        "caption")}
    recipe.data.detection_augment = None
    recipe.data.sources = None
    recipe.train.mixed_precision = "no"
    if name == "hemblip_lora":  # the toy corpus has no caption rows: LoRA on the VQA rows
        recipe.train.tasks = ["vqa"]
    trainer = Trainer(recipe, corpus, tmp_path / name, random_init=True, max_steps=1, cpu=True, progress=False,
                      log=lambda m: None)
    model = trainer.accelerator.unwrap_model(trainer.model)
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    from unihema_model.stages import STAGES

    expected = {p.split(".")[0] for p in STAGES[recipe.train.stage]["trainable"]}
    if name == "hemblip_lora":
        assert trainable == {"cmf", "text_model"}
        assert all("lora_" in n for n, p in model.text_model.named_parameters() if p.requires_grad)
    else:
        assert trainable == (expected if expected != {""} else trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = trainer.train()
    assert result["steps"] == 1 and np.isfinite(result["last_loss"])
    after = dict(model.named_parameters())
    for n, p in after.items():
        if n in before and not p.requires_grad:
            assert torch.equal(before[n], p.detach()), f"frozen {n} changed"
    assert (tmp_path / name / "config.json").is_file()


def test_dataloader_workers_give_the_same_batches(corpus, tmp_path):
    """``train.num_workers`` builds batches in worker processes; they are a pure function of the position, so the
    stream equals the in-process one (and resume positions stay valid)."""
    recipe = _recipe(tmp_path, num_workers=2, max_steps=3)
    trainer = Trainer(recipe, corpus, tmp_path / "w", random_init=True, cpu=True, progress=False, log=lambda m: None)
    trainer.epoch, trainer.step_in_epoch = 0, 1  # start mid-epoch, as after a resume
    with_workers = list(trainer._batch_stream(3))
    recipe.train.num_workers = 0
    in_process = list(trainer._batch_stream(3))
    assert len(with_workers) == len(in_process) == 3
    for a, b in zip(with_workers, in_process):
        assert a.keys() == b.keys()
        for task in a:
            assert torch.equal(a[task]["pixel_values"], b[task]["pixel_values"])


def test_init_from_starts_the_next_stage_from_the_previous_run(corpus, tmp_path):
    from safetensors.torch import load_file

    first = _recipe(tmp_path, "s1.yaml", stage="1", max_steps=1)
    _run(first, corpus, tmp_path / "stage1")
    saved = load_file(tmp_path / "stage1" / "model.safetensors")
    second = _recipe(tmp_path, "s5.yaml", stage="5", max_steps=1)
    trainer = Trainer(second, corpus, tmp_path / "stage5", init_from=tmp_path / "stage1", cpu=True, progress=False,
                      log=lambda m: None)
    model = trainer.accelerator.unwrap_model(trainer.model)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in saved.items())  # stage-1 weights, incl. the trained SCFE
    assert [n for n, p in model.named_parameters() if p.requires_grad] and all(
        n.startswith("qgmf.") for n, p in model.named_parameters() if p.requires_grad)
    trainer.train()
    after = load_file(tmp_path / "stage5" / "model.safetensors")
    assert torch.equal(after["scfe.proj.weight"], saved["scfe.proj.weight"])  # frozen in stage 5
    assert not torch.equal(after["qgmf.proj.weight"], saved["qgmf.proj.weight"])  # trained in stage 5
