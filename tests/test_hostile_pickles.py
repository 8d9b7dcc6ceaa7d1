"""Hostile pickles: no pickle read from a dataset root can run code (``henasy.data.safe_pickle``).

Every payload, if it ran, would create a sentinel folder; each case asserts that the folder is absent and
that the refusal names the file. The payloads cover ``__reduce__`` calls written by ``pickle.dumps`` at every
protocol (0–5), hand-assembled ``GLOBAL`` (protocol 0–3) and ``STACK_GLOBAL`` (protocol 4+) opcodes with dotted
names through every module of the allow-list, payloads nested inside containers and numpy object arrays, and
the two places that read pickles from a dataset root end to end (``bench eval … ek100_mir`` reads the
relevancy pkl; the hand-object reader that feeds HelpingHands' and HENASY's box losses).
"""

from __future__ import annotations

import os
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from bad_input_support import expect, expect_clear_error, run_bench

from henasy.core.errors import DataFormatError
from henasy.data import safe_pickle

pytestmark = pytest.mark.bad_input

ALLOWED_MODULES = sorted({module for module, _ in safe_pickle.ALLOWED_GLOBALS})


# ------------------------------------------------------------------------------------ payload builders
def _unicode(text: str) -> bytes:
    data = text.encode("utf-8")
    return (
        b"\x8c" + bytes([len(data)]) + data if len(data) < 256 else b"X" + struct.pack("<I", len(data)) + data
    )


def _call(args: list[str]) -> bytes:
    """MARK, the string arguments, TUPLE, REDUCE: calls whatever callable is on the stack."""
    return b"(" + b"".join(_unicode(a) for a in args) + b"tR"


def _global(module: str, name: str, opcode: str) -> bytes:
    if opcode == "GLOBAL":
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"
    return _unicode(module) + _unicode(name) + b"\x93"  # STACK_GLOBAL


def _header(protocol: int) -> bytes:
    return b"\x80" + bytes([protocol]) if protocol >= 2 else b""


def dotted_eval_payload(
    module: str, sentinel: Path, protocol: int = 4, opcode: str = "STACK_GLOBAL"
) -> bytes:
    """``module.__builtins__.get("eval")("__import__('os').mkdir(sentinel)")`` — the issue's exploit shape.

    Protocol 4 unpicklers resolve a dotted name by walking attributes, so an allow-list that admits a whole
    module (the old ``numpy.dtypes.*`` rule) hands out ``eval``.
    """
    code = f"__import__('os').mkdir({str(sentinel)!r})"
    return (
        _header(protocol)
        + _global(module, "__builtins__.get", opcode)
        + _call(["eval"])
        + _call([code])
        + b"."
    )


class MkdirOnLoad:
    """A classic payload: unpickling calls ``os.mkdir(path)``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


class EvalOnLoad:
    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (eval, (f"__import__('os').mkdir({self.path!r})",))


def _refused(tmp_path: Path, data: bytes, sentinel: Path, mentions: tuple[str, ...] = ()) -> DataFormatError:
    """Load ``data`` as a relevancy pkl: it must be refused, run nothing, and name the file (and ``mentions``)."""
    path = tmp_path / "caption_relevancy_EPIC_100_retrieval_test.pkl"
    path.write_bytes(data)
    try:
        safe_pickle.load(path, "relevancy pkl")
    except DataFormatError as err:
        error: DataFormatError | None = err
    else:
        error = None
    expect(not sentinel.exists(), f"the pickle ran code: {sentinel} was created")
    expect(error is not None, "the hostile pickle was loaded without an error")
    message = str(error)
    missing = [m for m in (path.name, *mentions) if m not in message]
    assert not missing, f"UNCLEAR: the refusal does not mention {missing}: {message}"
    return error


# ---------------------------------------------------------------------------------------------- cases
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("payload", [MkdirOnLoad, EvalOnLoad], ids=["os.mkdir", "builtins.eval"])
def test_reduce_payload_refused_at_every_protocol(tmp_path, protocol, payload):
    sentinel = tmp_path / "pwned"
    _refused(tmp_path, pickle.dumps(payload(sentinel), protocol=protocol), sentinel, ("not allowed",))


@pytest.mark.parametrize("module", ALLOWED_MODULES)
@pytest.mark.parametrize(
    "protocol, opcode", [(0, "GLOBAL"), (2, "GLOBAL"), (4, "STACK_GLOBAL"), (5, "STACK_GLOBAL")]
)
def test_dotted_name_through_every_allowed_module_refused(tmp_path, module, protocol, opcode):
    sentinel = tmp_path / "pwned"
    payload = dotted_eval_payload(module, sentinel, protocol, opcode)
    _refused(tmp_path, payload, sentinel, (f"{module}.__builtins__.get",))


@pytest.mark.parametrize(
    "module, name",
    [
        ("numpy.dtypes", "__builtins__"),  # a whole-module allowance used to admit any member
        ("numpy", "load"),  # allow_pickle=True would unpickle a nested file
        ("numpy", "frombuffer.__globals__"),
        ("numpy._core.multiarray", "_reconstruct.__globals__"),
        ("builtins", "getattr"),
        ("builtins", "__import__"),
        ("builtins", "open"),
        ("posix", "system"),
        ("subprocess", "Popen"),
        ("torch", "load"),
        ("copyreg", "_reconstructor"),
        ("collections", "OrderedDict.fromkeys.__self__"),
    ],
)
def test_members_outside_the_allow_list_refused(tmp_path, module, name):
    sentinel = tmp_path / "pwned"
    data = _header(4) + _global(module, name, "STACK_GLOBAL") + _call([str(sentinel)]) + b"."
    _refused(tmp_path, data, sentinel, (f"{module}.{name}",))


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("container", ["dict", "list", "nested", "object_array"])
def test_payload_nested_in_containers_refused(tmp_path, protocol, container):
    sentinel = tmp_path / "pwned"
    evil = MkdirOnLoad(sentinel)
    obj = {
        "dict": {12.5: {"hand_dets": np.zeros((2, 10), np.float32), "extra": evil}},
        "list": [np.zeros(3), evil],
        "nested": {"a": [({"b": (1, [evil])},)]},
        "object_array": np.array([1, evil], dtype=object),
    }[container]
    _refused(tmp_path, pickle.dumps(obj, protocol=protocol), sentinel)


def test_persistent_ids_refused(tmp_path):
    sentinel = tmp_path / "pwned"
    data = _header(2) + b"P0\n."  # PERSID "0"
    _refused(tmp_path, data, sentinel, ("persistent",))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_legitimate_data_still_loads(tmp_path, protocol):
    """The allow-list is not so strict that real relevancy matrices and 100DOH box dicts stop loading."""
    dtypes = ["float64", "float32", "float16", "int64", "uint8", "bool", "complex64", "U4", "S3", "M8[D]"]
    obj = {
        "relevancy": np.random.default_rng(0).random((4, 3)),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "dtypes": [np.zeros(2, dtype=d) for d in dtypes],
        "structured": np.zeros(2, dtype=[("a", "f4"), ("b", "i8")]),
        "scalars": [np.float32(1.5), np.int64(3), np.bool_(True)],
        "dtype_classes": [type(np.dtype("f4")), np.dtype("i8")],
        "plain": [{1, 2}, frozenset([3]), 1 + 2j, b"bytes", bytearray(b"ba"), None, "text"],
    }
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    back = safe_pickle.load(path)
    np.testing.assert_array_equal(back["relevancy"], obj["relevancy"])
    np.testing.assert_array_equal(back["fortran"], obj["fortran"])
    assert [a.dtype for a in back["dtypes"]] == [np.dtype(d) for d in dtypes]
    assert back["structured"].dtype == obj["structured"].dtype and back["plain"] == obj["plain"]


def test_numpy1_spelling_of_array_constructors_loads(tmp_path):
    """Files written with numpy 1.x (the official EK100 relevancy pkl) name ``numpy.core.multiarray``."""
    data = pickle.dumps(np.arange(4.0), protocol=2).replace(b"numpy._core.", b"numpy.core.")
    assert b"numpy.core.multiarray" in data
    path = tmp_path / "numpy1.pkl"
    path.write_bytes(data)
    back = safe_pickle.load(path)
    np.testing.assert_array_equal(back, np.arange(4.0))


# ------------------------------------------------------------------------------------------ end to end
def test_bench_eval_refuses_a_hostile_relevancy_pkl(tmp_path, synth_tiny):
    root = tmp_path / "data"
    shutil.copytree(synth_tiny, root)
    sentinel = tmp_path / "pwned"
    pkl = root / "ek100/retrieval_annotations/relevancy/caption_relevancy_EPIC_100_retrieval_test.pkl"
    pkl.write_bytes(dotted_eval_payload("numpy.dtypes", sentinel))
    result = run_bench(["eval", "lavila_tiny", "ek100_mir", "--data", root, "--out", tmp_path / "r.json"])
    expect(not sentinel.exists(), "bench eval ran code from the relevancy pkl")
    expect_clear_error(result, mentions=["caption_relevancy_EPIC_100_retrieval_test.pkl", "not allowed"])
    expect(not (tmp_path / "r.json").exists(), "a result was written for a refused dataset")


def test_hand_object_reader_refuses_a_hostile_box_file(tmp_path):
    from henasy.data.handobj import HandObjectStore, handobj_relpath

    sentinel = tmp_path / "pwned"
    path = tmp_path / "hand_object" / handobj_relpath("vid_a", 0.5)
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps({0.5: {"hand_dets": MkdirOnLoad(sentinel)}}, protocol=4))
    reader = HandObjectStore(tmp_path / "hand_object", size=64)
    with pytest.raises(DataFormatError) as info:
        reader.get("vid_a", 0.5)
    expect(not sentinel.exists(), "the hand-object reader ran code from a .handobj.pkl")
    message = str(info.value)
    assert path.name in message and "mkdir" in message and "not allowed" in message, message


def test_hostile_checkpoint_refused_by_bench_ckpt_check(tmp_path):
    """Checkpoints are read with ``torch.load(weights_only=True)``: a reduce payload is refused, not run."""
    import torch

    sentinel = tmp_path / "pwned"
    ckpt = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "args": MkdirOnLoad(sentinel)}, ckpt)
    result = run_bench(["ckpt", "check", "lavila_tiny", ckpt])
    expect_clear_error(result, mentions=["evil.pt"])
    expect(not sentinel.exists(), "loading a checkpoint ran code")
