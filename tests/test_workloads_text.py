"""Text workloads offline: tiny DistilBERT / BERT saved with save_pretrained, a word-level tokenizer,
local CSV, JSON lines, Parquet and save_to_disk data, single sentences and RTE-style pairs."""

import pytest
import torch
from offline_data import text_rows, write_text_dataset, write_text_model

from trainables import WorkloadError, get_workload, run_trial
from trainables.workloads import text
from vocab.contracts import TIMINGS

PAIRS = {"text_column": "premise", "text_pair_column": "hypothesis", "test_split": "test"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {kind: str(write_text_model(root / kind, kind)) for kind in ("distilbert", "bert")}


@pytest.fixture(scope="module")
def csv_single(tmp_path_factory):
    sizes = {"train": 48, "validation": 16, "test": 24}
    return write_text_dataset(tmp_path_factory.mktemp("csv"), "csv", sizes=sizes)


@pytest.fixture(scope="module")
def parquet_pairs(tmp_path_factory):
    return write_text_dataset(tmp_path_factory.mktemp("parquet"), "parquet", pairs=True)


def options(name, **given):
    return get_workload(name).validate_options(given)


def load(opts, stage, data_dir):
    """The splits a stage trains on and scores (every text workload shares load_data)."""
    return get_workload("trec6").stage_data(opts, stage, data_dir)


def test_csv_sentences_use_the_own_validation_split_and_string_labels(models, csv_single):
    opts = options("trec6", model=models["distilbert"], data_files=csv_single, label_column="label")
    tune = load(opts, "tune", None)
    assert (len(tune.train), len(tune.eval), tune.num_classes) == (48, 16, 2)
    seed = load(opts, "seed", None)
    assert (len(seed.train), len(seed.eval)) == (48, 24)
    assert set(tune.train.features) == {"input_ids", "attention_mask"}
    # "neg" < "pos": string labels map to ints in sorted order
    rows = text_rows(48, pairs=False, seed=0)
    assert tune.train.labels.tolist() == [int(r["label"] == "pos") for r in rows]


def test_parquet_pairs_carve_validation_from_train_and_keep_token_types(models, parquet_pairs):
    opts = options("rte", model=models["bert"], data_files=parquet_pairs, **PAIRS)
    tune = load(opts, "tune", None)
    assert (len(tune.train), len(tune.eval)) == (43, 5)  # 10% of 48 held out, no validation file
    assert set(tune.train.features) == {"input_ids", "token_type_ids", "attention_mask"}
    ids, types = tune.train.features["input_ids"][0], tune.train.features["token_type_ids"][0]
    sep = ids.tolist().index(3)  # [SEP] after the premise; the hypothesis is segment 1
    assert types[: sep + 1].sum() == 0 and types[sep + 1 : int(tune.train.lengths[0])].min() == 1


def test_dynamic_padding_cuts_each_batch_to_its_longest_row(models, csv_single):
    opts = options("trec6", model=models["distilbert"], data_files=csv_single, label_column="label")
    split = load(opts, "seed", None).train
    g = torch.Generator().manual_seed(0)
    widths = set()
    for inputs, _ in split.batches(8, shuffle=True, generator=g):
        mask = inputs["attention_mask"]
        assert mask.shape == inputs["input_ids"].shape
        assert mask.sum(dim=1).max() == mask.shape[1]  # no all-padding column
        widths.add(mask.shape[1])
    assert len(widths) > 1


def test_max_length_truncates(models, csv_single):
    opts = options("trec6", model=models["distilbert"], data_files=csv_single, label_column="label", max_length=8)
    split = load(opts, "seed", None).train
    assert split.features["input_ids"].shape[1] == 8


def test_jsonl_folder_and_saved_dataset_load(models, tmp_path):
    folder = tmp_path / "jsonl"
    write_text_dataset(folder, "jsonl", sizes={"train": 20, "test": 10})
    opts = options("imdb", model=models["distilbert"], dataset=str(folder))
    assert len(load(opts, "seed", None).eval) == 10

    import datasets

    saved = tmp_path / "saved"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(text_rows(20, False, 1)),
         "test": datasets.Dataset.from_list(text_rows(10, False, 2))}
    ).save_to_disk(str(saved))
    opts = options("imdb", model=models["distilbert"], dataset="saved")
    assert len(load(opts, "seed", str(tmp_path)).train) == 20  # relative to data_dir


def test_data_errors_name_what_is_missing(models, csv_single, tmp_path):
    with pytest.raises(WorkloadError, match="no split 'validation'.*'test', 'train'"):
        load(options("rte", model=models["bert"], data_files={"train": csv_single["train"],
                                                                          "test": csv_single["test"]}),
                       "seed", None)
    with pytest.raises(WorkloadError, match="no column 'sentence1'"):
        load(options("rte", model=models["bert"], data_files=csv_single), "seed", None)
    with pytest.raises(WorkloadError, match="does not exist"):
        load(options("imdb", data_files={"train": str(tmp_path / "nope.csv")}), "seed", None)
    with pytest.raises(WorkloadError, match="local directory"):
        text.load_tokenizer(options("imdb", model=str(tmp_path / "no-model")))


@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_layer_groups_are_embeddings_blocks_head(models, kind):
    from trainables.workload import Data

    model = text.build_model(options("trec6", model=models[kind]), Data(None, None, num_classes=6))
    groups = text.layer_groups(model)
    assert len(groups) == 2 + 2  # embeddings, 2 blocks, head
    head = {id(p) for p in groups[-1]}
    assert id(model.hf.classifier.weight) in head
    assert model.hf.config.num_labels == 6


@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_text_models_keep_buffers_as_declared_so_members_run_alone(models, kind):
    from trainables import get_workload
    from trainables.forward import SOLO, choose_path
    from trainables.workload import Data

    model = text.build_model(options("trec6", model=models[kind]), Data(None, None, num_classes=6))
    workload = get_workload("trec6")
    assert workload.buffers and any(True for _ in model.buffers())
    assert choose_path(workload, model, 4) == SOLO


def test_pretrained_false_is_the_same_architecture_with_fresh_weights(models):
    from trainables.workload import Data

    data = Data(None, None, num_classes=2)
    torch.manual_seed(1)
    loaded = text.build_model(options("imdb", model=models["distilbert"]), data)
    torch.manual_seed(1)
    fresh = text.build_model(options("imdb", model=models["distilbert"], pretrained=False), data)
    a, b = loaded.state_dict(), fresh.state_dict()
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    key = "hf.distilbert.embeddings.word_embeddings.weight"
    assert not torch.equal(a[key], b[key])
    assert get_workload("imdb").regime_for(options("imdb", pretrained=False)) == "scratch"


@pytest.mark.parametrize(
    ("kind", "workload", "fmt"), [("distilbert", "rte", "parquet"), ("bert", "trec6", "csv")]
)
def test_text_trials_run_and_repeat(models, csv_single, parquet_pairs, kind, workload, fmt):
    extra = PAIRS if fmt == "parquet" else {"label_column": "label"}
    config = {
        "workload": workload, "strategy": "adamw", "epochs": 2, "seed": 0, "stage": "seed",
        "hparams": {"lr": 1e-3},
        "workload_options": {"model": models[kind], "data_files": parquet_pairs if fmt == "parquet" else csv_single,
                             **extra},
    }
    first = run_trial(config)
    assert [m["status"] for m in first] == ["ok", "ok"] and "test_accuracy" in first[-1]
    assert [{k: v for k, v in m.items() if k not in TIMINGS} for m in run_trial(config)] == [
        {k: v for k, v in m.items() if k not in TIMINGS} for m in first
    ]


def test_pretrained_false_trial_runs_in_the_scratch_regime(models, csv_single):
    history = run_trial(
        {"workload": "trec6", "strategy": "fixed_sgd", "epochs": 1,
         "workload_options": {"model": models["distilbert"], "data_files": csv_single, "label_column": "label",
                              "pretrained": False}}
    )
    assert history[0]["lr"] == 0.01  # fixed_sgd's scratch canonical LR, not the fine-tune 1e-3


def test_library_chatter_goes_to_the_trial_log_not_the_console(models, csv_single, tmp_path, capfd):
    """transformers' load report (a 2-label checkpoint given 6 classes) and progress bars stay out of
    stdout/stderr; the report is in the trial's log."""
    from trainables.logs import trial_log
    from trainables.workload import Data

    opts = options("trec6", model=models["distilbert"], data_files=csv_single, label_column="label")
    with trial_log(tmp_path / "logs" / "trial.log") as log:
        load(opts, "seed", None)
        text.build_model(opts, Data(None, None, num_classes=6))
    out, err = capfd.readouterr()
    assert "Loading weights" not in out + err and "Generating" not in out + err and "classifier" not in out + err
    assert "classifier" in log.read_text()  # the mismatched head, newly initialised
