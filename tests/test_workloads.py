"""Workload registry, option validation, the synthetic generator and CIFAR-10 (tiny, real pickle layout)."""

import dataclasses

import pytest
import torch
from offline_data import write_cifar10

import trainables
from trainables import Data, Option, Workload, WorkloadError, get_workload, list_workloads, register_workload
from trainables.workload import holdout
from trainables.workloads import cifar10, synthetic

# -- registry and options ------------------------------------------------------------------------


def test_builtin_workloads_are_registered_with_the_design_defaults():
    table = {w.name: (w.regime, w.default_epochs, w.batch_size) for w in list_workloads()}
    assert table["synthetic"] == ("scratch", 80, 64)
    assert table["cifar10"] == ("scratch", 50, 128)
    assert table["rte"] == ("finetune", 5, 32)
    assert table["trec6"] == ("finetune", 5, 32)
    assert table["imdb"] == ("finetune", 3, 32)


def test_unknown_workload_lists_the_registered_names():
    with pytest.raises(WorkloadError, match="unknown workload 'mnist'.*cifar10.*synthetic"):
        get_workload("mnist")


def test_unknown_option_names_the_option_and_the_allowed_ones():
    with pytest.raises(WorkloadError, match="no option 'n_rows'.*allowed options: val_fraction, n_train"):
        get_workload("synthetic").validate_options({"n_rows": 10})


@pytest.mark.parametrize(
    ("workload", "options", "message"),
    [
        ("synthetic", {"val_fraction": 1.5}, "'val_fraction' = 1.5.*0 < value < 1"),
        ("synthetic", {"n_train": 0}, "'n_train' = 0.*>= 1"),
        ("synthetic", {"n_train": True}, "'n_train' = True.*int"),
        ("cifar10", {"download": "yes"}, "'download' = 'yes'.*bool"),
        ("rte", {"max_length": 2}, "'max_length' = 2.*>= 8"),
        ("rte", {"data_files": {"train": 3}}, "'data_files'.*split name to path"),
    ],
)
def test_bad_option_values_are_rejected_with_the_allowed_values(workload, options, message):
    with pytest.raises(WorkloadError, match=message):
        get_workload(workload).validate_options(options)


def test_options_get_defaults_and_ints_widen_to_float():
    options = get_workload("synthetic").validate_options({"val_fraction": 1 / 4})
    assert options == {"val_fraction": 0.25, "n_train": None}
    assert Option("x", 0.5, float, "").validate("w", 1) == 1.0


def test_registering_twice_needs_replace():
    with pytest.raises(WorkloadError, match="already registered"):
        register_workload(get_workload("synthetic"))


def test_a_new_workload_is_a_few_lines_and_trains():
    """The README example: a tiny two-layer task registered and run through run_trial."""
    from torch import nn

    from trainables.workloads.synthetic import TensorSplit

    def load_data(options, data_dir):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(96, 4, generator=g)
        y = (x[:, 0] > 0).long()
        return Data(train=TensorSplit(x[:64], y[:64]), test=TensorSplit(x[64:], y[64:]), num_classes=2)

    register_workload(
        Workload(
            name="halfspace",
            description="is x[0] positive? (4-d Gaussian)",
            regime="scratch",
            default_epochs=2,
            batch_size=16,
            load_data=load_data,
            build_model=lambda options, data: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
            layer_groups=lambda model: [list(model[0].parameters()), list(model[2].parameters())],
        ),
        replace=True,
    )
    history = trainables.run_trial({"workload": "halfspace", "strategy": "fixed_sgd", "seed": 0})
    assert [m["epoch"] for m in history] == [1, 2]


def test_layer_groups_must_cover_every_parameter_once():
    from torch import nn

    from trainables.workload import check_layer_groups

    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    with pytest.raises(WorkloadError, match="no layer group"):
        check_layer_groups("w", model, [list(model[0].parameters())])
    with pytest.raises(WorkloadError, match="two layer groups"):
        check_layer_groups("w", model, [list(model.parameters()), list(model[1].parameters())])


def test_holdout_is_fixed_disjoint_and_complete():
    keep, val = holdout(100, 20)
    keep2, val2 = holdout(100, 20)
    assert torch.equal(keep, keep2) and torch.equal(val, val2)
    assert len(val) == 20 and sorted(torch.cat([keep, val]).tolist()) == list(range(100))


# -- synthetic -----------------------------------------------------------------------------------


def test_synthetic_generator_is_exactly_the_stated_one():
    g = torch.Generator().manual_seed(42)
    clean = torch.randn(8000, 64, generator=g)
    labels = (3 * clean[:, :10]).argmax(dim=1)
    noisy = clean + 0.1 * torch.randn(8000, 64, generator=g)
    x, y = synthetic.generate()
    assert x.shape == (8000, 64) and x.dtype == torch.float32 and y.shape == (8000,) and y.dtype == torch.int64
    assert torch.equal(x, noisy) and torch.equal(y, labels)
    assert set(y.tolist()) == set(range(10))
    x2, y2 = synthetic.generate()
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_synthetic_splits():
    x, y = synthetic.generate()
    options = get_workload("synthetic").validate_options({})
    seed = get_workload("synthetic").stage_data(options, "seed", None)
    assert (len(seed.train), len(seed.eval)) == (6400, 1600)
    assert torch.equal(seed.train.inputs, x[:6400]) and torch.equal(seed.eval.inputs, x[6400:])
    tune = get_workload("synthetic").stage_data(options, "tune", None)
    assert (len(tune.train), len(tune.eval)) == (5120, 1280)
    rows = {tuple(r) for r in x[:6400].tolist()}
    tune_rows = [tuple(r) for r in torch.cat([tune.train.inputs, tune.eval.inputs]).tolist()]
    assert len(set(tune_rows)) == 6400 and set(tune_rows) == rows  # a partition of the training rows
    small = get_workload("synthetic").stage_data({**options, "n_train": 100}, "seed", None)
    assert len(small.train) == 100 and len(small.eval) == 1600


def test_synthetic_model_and_layer_groups():
    model = synthetic.build_model({}, None)
    groups = synthetic.layer_groups(model)
    assert [tuple(g[0].shape) for g in groups] == [(128, 64), (128, 128), (128, 128), (10, 128)]
    assert model(torch.zeros(3, 64)).shape == (3, 10)


def test_split_batches_cover_each_row_once_and_keep_the_short_last_batch():
    split = synthetic.TensorSplit(torch.arange(10.0)[:, None], torch.arange(10))
    g = torch.Generator().manual_seed(0)
    batches = list(split.batches(4, shuffle=True, generator=g))
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    seen = torch.cat([labels for _, labels in batches])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    assert all(torch.equal(x[:, 0].long(), labels) for x, labels in batches)


# -- CIFAR-10 ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    return str(write_cifar10(tmp_path_factory.mktemp("cifar"), per_batch=16, n_test=20))


def test_cifar10_reads_the_pickle_layout_as_uint8(cifar_dir):
    options = get_workload("cifar10").validate_options({"verify_checksums": False, "val_size": 30})
    seed = get_workload("cifar10").stage_data(options, "seed", cifar_dir)
    assert seed.train.images.shape == (80, 3, 32, 32) and seed.train.images.dtype == torch.uint8
    assert seed.eval.images.shape == (20, 3, 32, 32) and seed.num_classes == 10
    tune = get_workload("cifar10").stage_data(options, "tune", cifar_dir)
    assert (len(tune.train), len(tune.eval)) == (50, 30)
    # The pickle rows are R, G, B planes: pixel (0, 0) of image 0 is bytes 0, 1024 and 2048.
    import pickle
    from pathlib import Path

    with open(Path(cifar_dir) / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        raw = pickle.load(f)
    assert seed.train.images[0, :, 0, 0].tolist() == raw["data"][0, [0, 1024, 2048]].tolist()
    assert seed.train.labels[:16].tolist() == raw["labels"]


def test_cifar10_offline_errors_say_where_and_what(tmp_path, cifar_dir):
    options = get_workload("cifar10").validate_options({})
    with pytest.raises(WorkloadError, match=rf"{tmp_path}.*cifar-10-batches-py.*data_batch_1.*download: true"):
        get_workload("cifar10").stage_data(options, "seed", str(tmp_path))
    with pytest.raises(WorkloadError, match="verify_checksums: false"):
        get_workload("cifar10").stage_data(options, "seed", cifar_dir)  # tiny files are not the official ones
    with pytest.raises(WorkloadError, match="data_dir"):
        get_workload("cifar10").stage_data(options, "seed", None)


def test_random_crop_is_a_shift_within_the_padding():
    images = torch.arange(2 * 3 * 32 * 32, dtype=torch.int64).reshape(2, 3, 32, 32) + 1
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        out = cifar10.random_crop(images, 4, g)
        assert out.shape == images.shape and out.dtype == images.dtype
        padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
        for b in range(2):
            matches = [
                (dy, dx) for dy in range(9) for dx in range(9)
                if torch.equal(out[b], padded[b, :, dy : dy + 32, dx : dx + 32])
            ]
            assert len(matches) == 1  # exactly one offset in [0, 8] x [0, 8] explains the crop


def test_random_flip_mirrors_some_images_and_keeps_the_others():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = cifar10.random_flip(images, torch.Generator().manual_seed(0))
    flipped = [torch.equal(out[i], images[i].flip(-1)) for i in range(64)]
    kept = [torch.equal(out[i], images[i]) for i in range(64)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54 and out.dtype == torch.uint8


def test_cifar10_batches_are_normalised_floats_and_augmented_only_in_training(cifar_dir):
    options = get_workload("cifar10").validate_options({"verify_checksums": False})
    split = get_workload("cifar10").stage_data(options, "seed", cifar_dir).train
    index = torch.arange(8)
    g = torch.Generator().manual_seed(0)
    plain = split.batch(index, train=False, generator=g)
    assert plain.shape == (8, 3, 32, 32) and plain.dtype == torch.float32
    expected = (split.images[:8].float() / 255 - torch.tensor(cifar10.MEAN).view(1, 3, 1, 1)) / torch.tensor(
        cifar10.STD
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(plain, expected)
    assert not torch.equal(split.batch(index, train=True, generator=g), plain)


def test_cifar10_model_and_layer_groups():
    model = cifar10.ConvNet()
    groups = cifar10.layer_groups(model)
    assert [tuple(g[0].shape) for g in groups] == [(32, 3, 3, 3), (64, 32, 3, 3), (128, 64, 3, 3), (256, 2048)]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name, model", [("synthetic", lambda: synthetic.build_model({}, None)),
                                         ("cifar10", lambda: cifar10.ConvNet())])
def test_declared_buffers_are_the_built_models_and_decide_the_path(name, model):
    """``Workload.buffers`` is what the spec's population check reads; it must say what the model has."""
    from trainables.forward import SOLO, STACKED, choose_path

    workload, built = get_workload(name), model()
    assert workload.buffers == any(True for _ in built.buffers()) is False
    assert workload.alone_because(16) is None and workload.alone_because(1) == "a single member"
    assert choose_path(workload, built, 16) == STACKED
    assert choose_path(workload, built, 1) == SOLO
    assert choose_path(workload, built, 16, mixed_precision=True) == SOLO


def test_every_auto_population_is_one_whose_members_share_passes():
    for workload in list_workloads():
        assert workload.population == 1 or workload.alone_because(workload.population) is None, workload.name


def test_a_model_with_buffers_runs_alone_declared_or_not():
    from trainables.forward import SOLO, choose_path

    undeclared = Workload(name="bn", description="", regime="scratch", default_epochs=1, batch_size=1,
                          eval_batch_size=1, load_data=None, build_model=None, layer_groups=None)
    declared = dataclasses.replace(undeclared, buffers=True)
    bn = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    assert choose_path(undeclared, bn, 8) == SOLO
    assert declared.alone_because(8) == "its model keeps buffers, which are per module"
    assert choose_path(declared, torch.nn.Sequential(torch.nn.Linear(4, 4)), 8) == SOLO


def test_cifar10_trains_through_run_trial(cifar_dir):
    history = trainables.run_trial(
        {
            "workload": "cifar10", "strategy": "fixed_sgd", "epochs": 1, "seed": 0, "data_dir": cifar_dir,
            "workload_options": {"verify_checksums": False, "val_size": 16},
        }
    )
    assert history[0]["status"] == "ok" and 0 <= history[0]["val_accuracy"] <= 1


def test_the_tune_stage_never_scores_or_trains_on_a_test_row():
    """A workload whose load_data returns only train and test: lrsweep carves validation rows out of
    train, so no tune-stage batch (training or scoring) ever holds a test row; the seed stage scores
    every test row."""
    from torch import nn

    from trainables.workloads.synthetic import TensorSplit

    seen: dict[str, set[int]] = {"train": set(), "scored": set()}

    class Spy(TensorSplit):
        """Column 0 of every row is its id (test rows: 1000 and up); records the ids of each batch."""

        def to(self, device):
            return Spy(self.inputs.to(device), self.labels.to(device))

        def subset(self, rows):
            return Spy(self.inputs[rows], self.labels[rows])

        def batch(self, index, train, generator):
            seen["train" if train else "scored"].update(int(i) for i in self.inputs[index, 0])
            return self.inputs[index, 1:]

    def load_data(options, data_dir):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(90, 4, generator=g)
        ids = torch.cat([torch.arange(60), 1000 + torch.arange(30)]).float()[:, None]
        x, y = torch.cat([ids, x], dim=1), (x[:, 0] > 0).long()
        return Data(train=Spy(x[:60], y[:60]), test=Spy(x[60:], y[60:]), num_classes=2)

    register_workload(Workload(
        name="spy", description="ids in column 0", regime="scratch", default_epochs=2, batch_size=8,
        load_data=load_data, holdout=0.25,
        build_model=lambda options, data: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
        layer_groups=lambda model: [list(model[0].parameters()), list(model[2].parameters())],
    ), replace=True)
    keep, val = holdout(60, 15)
    history = trainables.run_trial({"workload": "spy", "strategy": "adam", "stage": "tune"})
    assert all("test_accuracy" not in h for h in history)
    assert seen["scored"] == set(val.tolist()) and seen["train"] == set(keep.tolist())
    seen["train"].clear(), seen["scored"].clear()
    trainables.run_trial({"workload": "spy", "strategy": "adam", "stage": "seed"})
    assert seen["scored"] == set(range(1000, 1030)) and seen["train"] == set(range(60))
