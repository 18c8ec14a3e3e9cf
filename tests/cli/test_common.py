"""The model flags shared by attack, certify and evaluate (wdrobust.cli.common): a user's own class through
--arch SOURCE:Class with --arch-option, a TorchScript file and a torch.export archive, give the figures of
the same module run from Python; every mistake is one line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _cli import invoke, one_line_error
from _user_module import SOURCE

from wdrobust import data, nets

N = 12
#: The error of hidden=8 on weights of hidden=16: the first mismatched key with both shapes.
MISMATCH = "layer body.1.weight: checkpoint (16, 64), architecture (8, 64)"


@pytest.fixture
def user_model(tmp_path: Path) -> tuple[str, Path, torch.nn.Module]:
    """(the --arch value, a torch.save state dict of it, the module) of a user's file."""
    source = tmp_path / "tiny_net.py"
    source.write_text(SOURCE)
    arch = f"{source}:TinyNet"
    model = nets.build(arch, seed=0, hidden=16).eval()
    weights = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), weights)
    return arch, weights, model


def clean_accuracy(model: torch.nn.Module) -> float:
    x, y = data.load("digits", "test", device="cpu")
    with torch.no_grad():
        return float((model(x[:N]).argmax(1) == y[:N]).float().mean())


def test_attack_runs_a_user_class_a_torchscript_file_and_an_exported_archive(user_model, tmp_path) -> None:
    arch, weights, model = user_model
    expected = f"{100 * clean_accuracy(model):.2f} %"
    flags = ("--n", N, "--attack", "pgd", "--option", "steps=2", "--quiet")
    result = invoke("attack", "--model", weights, "--arch", arch, "--arch-option", "hidden=16", *flags)
    assert result.exit_code == 0, result.output
    assert expected in result.output
    scripted = tmp_path / "tiny_script.pt"
    torch.jit.save(torch.jit.script(model), scripted)
    exported = tmp_path / "tiny.pt2"
    example = (torch.rand(2, 1, 8, 8),)
    dims = ({0: torch.export.Dim("batch")},)
    torch.export.save(torch.export.export(model, example, dynamic_shapes=dims), exported)
    for archive in (scripted, exported):
        result = invoke("attack", "--model", archive, *flags)
        assert result.exit_code == 0, result.output
        assert expected in result.output


def test_certify_and_evaluate_run_a_user_class(user_model, tmp_path: Path) -> None:
    arch, weights, _ = user_model
    model_flags = ("--model", weights, "--arch", arch, "--arch-option", "hidden=16")
    result = invoke("certify", *model_flags, "--n", 4, "--method", "global,crown", "--quiet")
    assert result.exit_code == 0, result.output
    assert "crown" in result.output and "sound" in result.output
    out = tmp_path / "run"
    result = invoke("evaluate", *model_flags, "--n", 4, "--batch-size", 4, "--eps", "0.1", "--p", "inf",
                    "--attacks", "pgd", "--certificates", "crown", "--out", out, "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((out / "results.json").read_text())["model"]["arch"] == "TinyNet"  # no local path


def test_certify_refuses_a_torchscript_file_for_a_certificate_that_reads_layers(user_model, tmp_path) -> None:
    scripted = tmp_path / "tiny_script.pt"
    torch.jit.save(torch.jit.script(user_model[2]), scripted)
    one_line_error(invoke("certify", "--model", scripted, "--n", 2, "--method", "crown"),
                   "crown reads the model's layers", "TorchScript")  # fmt: skip
    result = invoke("certify", "--model", scripted, "--n", 2, "--method", "first-order", "--quiet")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", ["attack", "certify", "evaluate"])
@pytest.mark.parametrize(
    ("arch", "options", "parts"),
    [
        ("{dir}/absent.py:TinyNet", [], ["no Python file"]),
        ("{dir}/tiny_net.py:Wide", [], ["has no class 'Wide'"]),
        ("torch:Tensor", [], ["torch:Tensor is a class, not a torch.nn.Module subclass"]),
        ("{dir}/tiny_net.py:TinyNet", [], ["failed to construct", "hidden"]),
        ("{dir}/tiny_net.py:TinyNet", ["hidden=8"], [MISMATCH]),
        ("{dir}/tiny_net.py:TinyNet", ["depth=2"], ["has no option 'depth'"]),
    ],
)
def test_arch_mistakes_are_one_line(user_model, tmp_path, command, arch, options, parts) -> None:
    _, weights, _ = user_model
    flags = [item for o in options for item in ("--arch-option", o)]
    out = tmp_path / "out"
    extra = ("--out", out) if command == "evaluate" else ()
    arch = arch.format(dir=tmp_path)
    result = invoke(command, "--model", weights, "--arch", arch, *flags, "--n", 2, *extra)
    one_line_error(result, *parts)
    assert not out.exists()


@pytest.mark.parametrize("command", ["attack", "certify"])
def test_offset_indices_and_threads_select_as_evaluate(
    command, digits_mlp_path, digits_mlp, tmp_path
) -> None:
    """The clean CE that certify prints, and the clean accuracy of attack, are those of the selected
    samples: n from --offset on, or the listed --indices in their order."""
    from wdrobust.losses import all_losses
    from wdrobust.report.numbers import number

    x, y = data.load("digits", "test", device="cpu")
    listed = [40, 3, 17, 99, 250]
    (tmp_path / "idx.txt").write_text("40, 3\n17 99\n250\n")
    flags = {"attack": ("--attack", "pgd", "--option", "steps=1"), "certify": ("--method", "global")}[command]
    for selection, picked in (
        (("--offset", 30, "--n", 5), list(range(30, 35))),
        (("--indices", tmp_path / "idx.txt"), listed),
    ):
        result = invoke(command, "--model", digits_mlp_path, *selection, *flags, "--threads", 2, "--quiet")
        assert result.exit_code == 0, result.output
        assert "on 5 samples" in result.output
        with torch.no_grad():
            z = digits_mlp(x[picked])
        if command == "certify":
            ce = float(all_losses(z, y[picked], ("ce",))["ce"].mean())
            assert f" {number(ce)} " in result.output
        else:
            assert f"{100 * float((z.argmax(1) == y[picked]).float().mean()):.2f} %" in result.output


@pytest.mark.parametrize("command", ["attack", "certify"])
@pytest.mark.parametrize(
    ("extra", "parts"),
    [
        (("--threads", -1), ["--threads must be >= 0"]),
        (("--offset", -2), ["--offset must be >= 0"]),
        (("--offset", 2, "--indices", "{idx}"), ["give one of them"]),
        (("--offset", 100000), ["offset 100000 is beyond the 450 samples"]),
        (("--indices", "{dir}/absent.txt"), ["indices file not found"]),
    ],
)
def test_selection_and_thread_mistakes_are_one_line(command, extra, parts, digits_mlp_path, tmp_path) -> None:
    (tmp_path / "idx.txt").write_text("1 2\n")
    args = [str(a).format(idx=tmp_path / "idx.txt", dir=tmp_path) for a in extra]
    one_line_error(invoke(command, "--model", digits_mlp_path, "--n", 2, *args), *parts)


def test_threads_set_the_count_inside_the_block_and_restore_it(digits_mlp) -> None:
    from wdrobust.cli.common import cpu_threads

    before = torch.get_num_threads()
    cpu = torch.device("cpu")
    for threads, inside in ((3, 3), (0, before), (None, 1)):  # None: a small model runs on one thread
        with cpu_threads(threads, digits_mlp, cpu):
            assert torch.get_num_threads() == inside
        assert torch.get_num_threads() == before
