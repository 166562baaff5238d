"""Plugin resolution and import without Ray: a package directory, an installed distribution's
`lrsweep.plugins` entry point, and the errors that name a bad entry."""

from __future__ import annotations

import sys
import textwrap

import pytest

from sweeps.spec import SpecError, parse_spec, plugins

WORKLOAD = textwrap.dedent('''
    import torch
    from torch import nn
    from trainables import Data, Workload, register_workload
    from trainables.workloads.synthetic import TensorSplit

    def load_data(options, data_dir):
        x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
        y = (x[:, 0] > 0).long()
        return Data(TensorSplit(x[:30], y[:30]), TensorSplit(x[30:], y[30:]), 2)

    register_workload(Workload(
        name=NAME, description="test", regime="scratch", default_epochs=1, batch_size=8, load_data=load_data,
        build_model=lambda options, data: nn.Linear(3, 2), layer_groups=lambda model: [list(model.parameters())],
    ), replace=True)
''')


def _spec(workload: str, **extra) -> dict:
    return {"name": "p", "workloads": [workload], "strategies": ["adam"], "budget": {"trials": 1}, **extra}


def test_a_package_directory_plugin_registers_under_its_directory_name(tmp_path):
    package = tmp_path / "pkg_plugin_dir"
    package.mkdir()
    (package / "__init__.py").write_text("from . import tasks\n")
    (package / "tasks.py").write_text(WORKLOAD.replace("NAME", "'from_package'"))
    spec = parse_spec(_spec("from_package", plugins=["./pkg_plugin_dir"]), base=tmp_path)
    assert spec.plugins == (plugins.Plugin("pkg_plugin_dir", str(package)),)
    assert str(tmp_path) not in sys.path  # imported from its file, sys.path untouched
    env = plugins.runtime_env(spec.plugins)
    assert env == {"env_vars": {"LRSWEEP_PLUGINS": "pkg_plugin_dir"}, "py_modules": [str(package)]}


def test_an_installed_entry_point_is_loaded_without_being_named(tmp_path, monkeypatch):
    (tmp_path / "ep_plugin_mod.py").write_text(WORKLOAD.replace("NAME", "'from_entry_point'"))
    info = tmp_path / "ep_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lrsweep.plugins]\nmine = ep_plugin_mod\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # where an installed distribution would be
    spec = parse_spec(_spec("from_entry_point"))
    assert spec.workloads[0].name == "from_entry_point" and spec.plugins == ()
    assert plugins._shipped("ep_plugin_mod") is not None  # not in site-packages here, but named by nobody


def test_bad_plugin_entries_are_spec_errors_naming_the_field(tmp_path):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(SpecError) as err:
        parse_spec(_spec("synthetic", plugins=["./broken_plugin.py", "./missing.py", 3]), base=tmp_path,
                   plugins=("not_a_module_qq",))
    problems = "\n".join(err.value.problems)
    assert "plugins: got ['./broken_plugin.py', './missing.py', 3]" in problems  # not a list of strings
    with pytest.raises(SpecError) as err:
        parse_spec(_spec("synthetic", plugins=["./broken_plugin.py", "./missing.py"]), base=tmp_path,
                   plugins=("not_a_module_qq",))
    problems = err.value.problems
    assert problems[0].startswith("plugins[0]: 'broken_plugin': importing it failed: RuntimeError: boom")
    assert problems[1].startswith("plugins[1]: './missing.py': no such file or package directory")
    assert problems[2].startswith("--plugin: 'not_a_module_qq': no module of that name is importable")
    assert "broken_plugin" not in sys.modules


def test_the_listing_commands_show_a_plugin_workload(tmp_path, capsys):
    from sweeps.commands import cli

    (tmp_path / "listed_plugin.py").write_text(WORKLOAD.replace("NAME", "'listed_workload'"))
    with pytest.raises(SystemExit) as e:
        cli.main(["workloads", "--plugin", str(tmp_path / "listed_plugin.py")])
    assert e.value.code == 0 and "listed_workload" in capsys.readouterr().out
    missing = str(tmp_path / "nope.py")
    with pytest.raises(SystemExit) as e:
        cli.main(["strategies", "--plugin", missing])
    assert e.value.code == 2 and f"--plugin: '{missing}': no such file" in capsys.readouterr().err
