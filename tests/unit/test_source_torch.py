"""navigator/source/torch.py: file sniffing and the pickle refusal (without unpickling anything)."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from navigator.errors import InputError, UntrustedPickleError  # noqa: E402
from navigator.source import torch as torch_source  # noqa: E402
from navigator.source.torch import load_file, sniff  # noqa: E402

MARKER_ENV = "NAVIGATOR_TEST_UNPICKLE_MARKER"


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(x)


class Booby(Tiny):
    """Unpickling it writes the file named by $NAVIGATOR_TEST_UNPICKLE_MARKER: proof that it was opened."""

    def __setstate__(self, state):
        Path(os.environ[MARKER_ENV]).write_text("unpickled")
        super().__setstate__(state)


@pytest.fixture
def marker(tmp_path, monkeypatch):
    path = tmp_path / "unpickled.marker"
    monkeypatch.setenv(MARKER_ENV, str(path))
    return path


@pytest.fixture
def booby_file(tmp_path):
    path = tmp_path / "booby.pt"
    torch.save(Booby(), path)
    return path


def test_text_file_named_pt_is_rejected(tmp_path):
    path = tmp_path / "x.pt"
    path.write_text("this is not a model\n")
    with pytest.raises(InputError, match="not a PyTorch model"):
        sniff(path)
    with pytest.raises(InputError):
        load_file(path, trust_pickle=True)


def test_random_zip_is_rejected(tmp_path):
    path = tmp_path / "weights.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
        zf.writestr("nested/data.json", "{}")
    with pytest.raises(InputError, match="zip archive"):
        sniff(path)
    with pytest.raises(InputError):
        load_file(path, trust_pickle=True)


def test_saved_module_is_pickle_and_sniffing_does_not_unpickle(booby_file, marker):
    assert sniff(booby_file) == "pickle"
    assert not marker.exists()


def test_legacy_non_zip_torch_save_is_pickle(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save(Tiny(), path, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)
    assert sniff(path) == "pickle"
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}))
    assert sniff(plain) == "pickle"


def test_pickle_refused_without_trust_and_never_unpickled(booby_file, marker, monkeypatch):
    """Without trust only PyTorch's restricted loader reads the file: it refuses the module's class."""
    calls = []
    real_load = torch.load

    def restricted_only(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        if kwargs.get("weights_only") is not True:
            pytest.fail("torch.load was called on an untrusted pickle without weights_only=True")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", restricted_only)
    with pytest.raises(UntrustedPickleError, match="--trust-pickle") as info:
        load_file(booby_file, trust_pickle=False)
    assert str(booby_file) in str(info.value)
    assert calls == [True]
    assert not marker.exists()


def test_pickle_loads_with_trust(booby_file, marker):
    kind, model = load_file(booby_file, trust_pickle=True)
    assert kind == "module"
    assert isinstance(model, Booby)
    assert not model.training  # returned in eval mode
    assert marker.read_text() == "unpickled"  # the marker does detect unpickling
    x = torch.ones(1, 3)
    assert model(x).shape == (1, 2)


def test_trusted_pickle_that_is_not_a_module_is_rejected(tmp_path):
    path = tmp_path / "state.pt"
    torch.save(Tiny().state_dict(), path)
    assert sniff(path) == "pickle"
    with pytest.raises(InputError, match="a state_dict: weights without the model's code"):
        load_file(path, trust_pickle=True)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.* deprecation notices
def test_torchscript_archive(tmp_path):
    path = tmp_path / "scripted.pt"
    module = Tiny().eval()
    torch.jit.save(torch.jit.trace(module, torch.randn(1, 3)), str(path))
    assert sniff(path) == "torchscript"
    kind, loaded = load_file(path, trust_pickle=False)  # no pickle trust needed
    assert kind == "torchscript"
    assert isinstance(loaded, torch.jit.ScriptModule)
    x = torch.randn(2, 3)
    torch.testing.assert_close(loaded(x), module(x))
    assert torch_source.input_names(kind, loaded) == ["x"]


def test_exported_program(tmp_path):
    path = tmp_path / "model.pt2"
    module = Tiny().eval()
    program = torch.export.export(module, (torch.randn(2, 3),))
    torch.export.save(program, str(path))
    assert sniff(path) == "exported"
    kind, loaded = load_file(path, trust_pickle=False)
    assert kind == "exported"
    assert isinstance(loaded, torch.export.ExportedProgram)
    x = torch.randn(2, 3)
    torch.testing.assert_close(loaded.module()(x), module(x))
    (spec,) = torch_source.exported_inputs(loaded)
    assert (spec.dtype, spec.shape) == ("float32", (2, 3))



class Keywords(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, ids, mask=None, extra=None):
        return self.lin(ids * mask) + extra[0]


def test_a_program_exported_with_keyword_and_nested_arguments_runs_from_flat_named_inputs(tmp_path):
    """Exported as model(x, mask=m, extra=(e,)): every runner calls it with its inputs flat, in the
    program's user-input order, and gets the model's answers."""
    from navigator.runtimes import torch as rt_torch
    from navigator.source import load_source

    module = Keywords().eval()
    x, m, e = torch.randn(4, 3), torch.ones(4, 3), torch.randn(4, 2)
    batch = torch.export.Dim("batch", max=64)
    program = torch.export.export(module, (x,), {"mask": m, "extra": (e,)},
                                  dynamic_shapes={"ids": {0: batch}, "mask": {0: batch}, "extra": ({0: batch},)})
    path = tmp_path / "kw.pt2"
    torch.export.save(program, str(path))
    _, loaded = load_file(path, trust_pickle=False)
    names = torch_source.input_names("exported", loaded)
    assert len(names) == 3
    inputs = {n: v.numpy() for n, v in zip(names, (x, m, e))}
    want = module(x, mask=m, extra=(e,)).detach().numpy()
    np.testing.assert_allclose(torch_source.run("exported", loaded, names, inputs)[0], want, rtol=1e-6)
    flat = rt_torch.load_file(path, "cpu")  # as the twin and the GPU paths load it
    np.testing.assert_allclose(flat(x, m, e).detach().numpy(), want, rtol=1e-6)
    source = load_source(path, batch=5)  # navigator draws inputs of every flat name and runs the model
    assert [t.name for t in source.io.inputs] == names and source.sample_outputs[0].shape == (5, 2)


class Output:
    """A model output container registered with pytree by the code that exported the model (as transformers
    registers its ModelOutput classes): a process without that registration cannot load the program."""

    def __init__(self, logits):
        self.logits = logits


class Boxed(Tiny):
    def forward(self, x):
        return Output(self.lin(x))


def test_an_exported_program_that_cannot_be_rebuilt_is_one_line_naming_the_cause(tmp_path, capfd):
    pytree = torch.utils._pytree
    if not hasattr(pytree, "_deregister_pytree_node"):
        pytest.skip("this torch cannot unregister a pytree node")
    path = tmp_path / "boxed.pt2"
    pytree.register_pytree_node(Output, lambda o: ([o.logits], None), lambda values, _: Output(values[0]),
                                serialized_type_name="exporter.Output")
    try:
        torch.export.save(torch.export.export(Boxed().eval(), (torch.randn(2, 3),)), str(path))
    finally:
        pytree._deregister_pytree_node(Output)
    capfd.readouterr()
    with pytest.raises(InputError) as refused:
        load_file(path, trust_pickle=False)
    message = str(refused.value)
    assert message.startswith(f"{path}: PyTorch could not load it (NotImplementedError: ") and "Output" in message
    assert "tuples, lists or dicts" in message and "\n" not in message
    assert "Traceback" not in capfd.readouterr().err  # torch's own log of the cause is kept off stderr


def test_untrusted_state_dict_is_named_without_the_trust_flag(tmp_path):
    """A weights-only file is read by the restricted loader: the user learns it has no architecture and
    how to save a loadable model, without being told to trust it."""
    plain, nested = tmp_path / "weights.pt", tmp_path / "checkpoint.pt"
    torch.save(Tiny().state_dict(), plain)
    torch.save({"epoch": 3, "model": Tiny().state_dict(), "best": 0.9}, nested)  # OrderedDict inside a dict
    for path in (plain, nested):
        with pytest.raises(InputError, match="a state_dict: weights without the model's code") as info:
            load_file(path, trust_pickle=False)
        assert not isinstance(info.value, UntrustedPickleError)
        assert "torch.export.save" in str(info.value) and "torch.jit.save" in str(info.value)
        assert "--trust-pickle" not in str(info.value)


def test_restricted_loader_runs_no_payload_hidden_in_a_state_dict(tmp_path, marker):
    """A state_dict-looking file with a payload among its tensors: the restricted loader refuses it."""

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('ran')",))

    path = tmp_path / "weights.pt"
    torch.save({"lin.weight": torch.ones(2, 3), "lin.bias": Payload()}, path)
    with pytest.raises(UntrustedPickleError, match="--trust-pickle"):
        load_file(path, trust_pickle=False)
    assert not marker.exists()
    with pytest.raises(InputError):  # the payload does run once trusted: the marker detects it
        load_file(path, trust_pickle=True)
    assert marker.exists()


def test_restricted_loader_names_what_else_it_read(tmp_path):
    path = tmp_path / "tensors.pt"
    torch.save([torch.ones(2)], path)
    with pytest.raises(InputError, match="holds a list, not an nn.Module"):
        load_file(path, trust_pickle=False)
