"""No wrong code: generated models compute what was drawn, whatever the block names and in-place
flags. Random DAGs (branches, Add, Concat, in-place activations and dropout) are compared with the
out-of-place reference interpreter in eval and train mode, forward and backward; hostile names
(nn.Module's attributes, keywords, builtins, unicode, duplicates) must give code that parses to
nothing but a model, runs, and round-trips its state_dict.

CNNB_EXAMPLES=500 for a deeper search than the default run."""

from __future__ import annotations

import ast
import builtins
import keyword
import os
import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from cnnbuilder.core import codegen
from cnnbuilder.core.blocks import REGISTRY, get_spec
from cnnbuilder.core.codegen import RESERVED, generate, identifier, instantiate
from cnnbuilder.core.graph import Graph
from cnnbuilder.core.project import load_project
from cnnbuilder.core.shapes import analyze

from .reference import Interpreter, assert_ruff_clean, copy_weights, one_thread  # noqa: F401 (autouse)

EXAMPLES = int(os.environ.get("CNNB_EXAMPLES", 30))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INPLACE_TYPES = sorted(t for t, s in REGISTRY.items() if "inplace" in s.param_map)



def module_attrs() -> set[str]:
    """Every public name an nn.Module has, asked of the installed torch."""
    m = nn.Module()
    return {n for n in (*dir(nn.Module), *dir(m), *vars(m)) if not n.startswith("_")}


# -- random graphs ------------------------------------------------------------------------

def _ops_for(rank: int, shape: tuple[int, ...]) -> list[tuple[str, st.SearchStrategy]]:
    flag = st.booleans()
    acts = [("ReLU", st.fixed_dictionaries({"inplace": flag})),
            ("LeakyReLU", st.fixed_dictionaries({"negative_slope": st.sampled_from([0.01, 0.2]), "inplace": flag})),
            ("ELU", st.fixed_dictionaries({"inplace": flag})),
            ("SiLU", st.fixed_dictionaries({"inplace": flag})),
            ("Dropout", st.fixed_dictionaries({"p": st.sampled_from([0.0, 0.3]), "inplace": flag})),
            ("GELU", st.just({})), ("Sigmoid", st.just({})), ("Tanh", st.just({})),
            ("Softmax", st.just({"dim": 1})), ("LogSoftmax", st.just({"dim": 1})), ("Identity", st.just({})),
            *((t, st.fixed_dictionaries({"inplace": flag})) for t in ("ReLU6", "Hardswish", "Hardsigmoid", "Mish")),
            ("Hardtanh", st.fixed_dictionaries({"min_val": st.just(-0.5), "max_val": st.just(0.5), "inplace": flag})),
            ("PReLU", st.fixed_dictionaries({"num_parameters": st.sampled_from([1, shape[0]])}))]
    if rank == 1:
        return acts + [("Linear", st.fixed_dictionaries({"out_features": st.sampled_from([4, 6])})),
                       ("BatchNorm1d", st.just({})), ("LayerNorm", st.just({})),
                       ("Unflatten", st.just({"dim": 1, "unflattened_size": [-1, 1, 1]}))]
    ops = acts + [
        ("Conv2d", st.fixed_dictionaries({"out_channels": st.sampled_from([2, 4]),
                                          "kernel_size": st.sampled_from([1, 3]), "padding": st.just("same")})),
        ("Dropout2d", st.fixed_dictionaries({"p": st.sampled_from([0.0, 0.5]), "inplace": flag})),
        ("BatchNorm2d", st.just({})), ("GroupNorm", st.just({"num_groups": 1})),
        ("AvgPool2d", st.just({"kernel_size": 3, "stride": 1, "padding": 1})),
        ("Flatten", st.just({})), ("LocalResponseNorm", st.just({"size": 3})),
        ("ZeroPad2d", st.sampled_from([{"padding": 1}, {"padding": [1, 0, 2, -1]}])),
    ]
    if shape[0] % 2 == 0:
        ops.append(("ChannelShuffle", st.just({"groups": 2})))
    if min(shape[1:]) >= 4:
        ops.append(("MaxPool2d", st.just({"kernel_size": 2})))
    if max(shape[1:]) <= 4:
        ops.append(("Upsample", st.just({"scale_factor": 2.0})))
    return ops


def _values(g: Graph) -> list[tuple[str, int, tuple[int, ...]]]:
    """Every tensor a block can be fed: (block, output port, shape)."""
    a = analyze(g)
    return [(n, k, shape) for n in a.order for k, shape in enumerate(a.nodes[n].outputs)]


@st.composite
def graphs(draw, max_blocks: int = 10) -> Graph:
    """A valid DAG with one Input and one output: chains, fan-outs, Adds, Muls, Concats, Splits and
    Chunks whose parts feed different blocks, squeeze-excite gates, in-place flags drawn at random."""
    g = Graph()
    g.add_node("Input", {"shape": draw(st.sampled_from([[2, 4, 4], [3, 6, 6], [6], [4, 3, 3]]))})
    for _ in range(draw(st.integers(1, max_blocks))):
        live = _values(g)
        kind = draw(st.integers(0, 9))
        if kind <= 1 and len(live) >= 2:  # a merge of two values
            (x, kx, sx), (y, ky, sy) = draw(st.lists(st.sampled_from(live), min_size=2, max_size=2, unique=True))
            if x == y:
                continue  # one block feeds another at most once
            if sx == sy and draw(st.booleans()):
                merge = g.add_node(draw(st.sampled_from(["Add", "Mul"])), {})
            elif len(sx) == len(sy) and sx[1:] == sy[1:]:
                merge = g.add_node("Concat", {})
            else:
                continue
            g.connect(x, merge.id, port=kx)
            g.connect(y, merge.id, port=ky)
            continue
        src, port, shape = draw(st.sampled_from(live))
        if kind == 2 and shape[0] >= 2:  # parts along the channels (or features)
            if draw(st.booleans()):
                node = g.add_node("Chunk", {"chunks": draw(st.sampled_from([2, 3]))})
            else:
                cut = draw(st.integers(1, shape[0] - 1))
                node = g.add_node("Split", {"split_size_or_sections": [cut, shape[0] - cut]})
        elif kind == 3 and len(shape) == 3:  # a squeeze-excite gate: x * hardsigmoid(pool(x))
            pool = g.add_node("AdaptiveAvgPool2d", {"output_size": 1})
            gate = g.add_node(draw(st.sampled_from(["Hardsigmoid", "Sigmoid"])), {})
            node = g.add_node("Mul", {})
            g.connect(src, pool.id, port=port)
            g.connect(pool.id, gate.id)
            g.connect(src, node.id, port=port)
            g.connect(gate.id, node.id)
            continue
        else:
            t, params = draw(st.sampled_from(_ops_for(len(shape), shape)))
            node = g.add_node(t, draw(params))
        g.connect(src, node.id, port=port)
        if analyze(g).nodes[node.id].shape is None:
            g.remove_node(node.id)
    # One output: every dangling branch gets a small head and the heads are summed.
    a = analyze(g)
    heads = []
    for s in [n for n in a.order if not g.outputs(n)]:
        prev = s
        chain = [("Flatten", {}), ("Linear", {"out_features": 3})] if len(a.nodes[s].shape) > 1 else \
            [("Linear", {"out_features": 3})]
        for t, p in chain:
            node = g.add_node(t, p)
            g.connect(prev, node.id)
            prev = node.id
        heads.append(prev)
    if len(heads) > 1:
        add = g.add_node("Add", {})
        for h in heads:
            g.connect(h, add.id)
    assert analyze(g).ok, [p.message for p in analyze(g).problems]
    return g


def _pair(graph: Graph, gen: codegen.Generated | None = None):
    """The generated model and the reference interpreter with the same weights."""
    gen = gen or generate(graph)
    torch.manual_seed(0)
    model = _class_from(gen.code, gen.class_name)()
    ref = Interpreter(graph)
    copy_weights(model, ref)
    return gen, model, ref


def _class_from(code: str, name: str):
    ns: dict = {"__name__": "fuzz"}
    exec(compile(code, "<fuzz>", "exec"), ns)
    return ns[name]


def _run(model, x, seed: int, train: bool):
    model.train(train)
    x = x.clone().requires_grad_(True)
    kept = x.detach().clone()
    torch.manual_seed(seed)
    y = model(x)
    torch.manual_seed(seed + 1)
    y.mul(torch.randn_like(y)).sum().backward()
    assert torch.equal(x.detach(), kept), "the model overwrote its input"
    grads = [p.grad for p in model.parameters()]
    return y.detach(), x.grad, grads


def assert_same(a, b):
    # Tight, not bitwise: a loaded machine may pick another oneDNN kernel for the same conv.
    # (torch.allclose, not torch.testing.assert_close: that one imports half of torch._dynamo on first use.)
    assert a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-6), (a - b).abs().max()


def check_against_reference(graph: Graph, seed: int = 0):
    gen, model, ref = _pair(graph)
    shape = analyze(graph).input_shape
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(seed))
    for train in (False, True):
        y1, gx1, g1 = _run(model, x, seed, train)
        y2, gx2, g2 = _run(ref, x, seed, train)
        assert_same(y1, y2)
        assert_same(gx1, gx2)
        for p, q in zip(g1, g2, strict=True):
            if p is None or q is None:
                assert p is None and q is None
            else:
                assert_same(p, q)
        model.zero_grad(), ref.zero_grad()
    return gen


# -- in place ------------------------------------------------------------------------------

@FUZZ
@given(graphs())
def test_random_graphs_with_inplace_blocks_compute_what_was_drawn(g):
    gen = check_against_reference(g)
    # Every inplace=True is either kept in the code or explained there.
    for n in g:
        if n.params.get("inplace"):
            lines = "\n".join(gen.code.splitlines()[i - 1] for i in gen.lines_of[n.id])
            if n.id in gen.not_in_place:
                assert "not in place: " in lines and "inplace=True" not in lines
            else:
                assert "inplace=True" in lines


def _chain(g: Graph, src: str, *blocks):
    ids = []
    for t, p in blocks:
        n = g.add_node(t, p)
        g.connect(src, n.id)
        src = n.id
        ids.append(n.id)
    return ids


def test_inplace_relu_after_a_branch_keeps_the_branch_value():
    # The testers' case: conv1 -> ReLU(inplace) -> conv2 -> Add, and conv1 -> Add.
    g = Graph()
    x = g.add_node("Input", {"shape": [2, 6, 6]})
    conv1, relu, conv2 = _chain(g, x.id, ("Conv2d", {"out_channels": 3, "padding": 1}), ("ReLU", {"inplace": True}),
                                ("Conv2d", {"out_channels": 3, "padding": 1}))
    add = g.add_node("Add", {})
    g.connect(conv2, add.id)
    g.connect(conv1, add.id)
    gen = check_against_reference(g)
    assert gen.not_in_place == {relu: "conv1's output is also read by add1"}
    assert "# not in place: conv1's output is also read by add1\n        self.relu1 = nn.ReLU()\n" in gen.code
    # And the code computes conv2(relu(c1)) + c1, not conv2(relu(c1)) + relu(c1).
    model = instantiate(gen).eval()
    xs = torch.randn(4, 2, 6, 6)
    with torch.no_grad():
        c1 = model.conv1(xs)
        want = model.conv2(torch.relu(c1)) + c1
        assert torch.equal(model(xs), want)


def test_inplace_is_kept_where_it_is_safe_and_dropped_where_it_is_not():
    g = Graph()
    x = g.add_node("Input", {"shape": [2, 6, 6]})
    on_input, _, _, after_bn, drop_after_relu, _, silu, drop_after_silu, _, _, after_sigmoid, _ = _chain(
        g, x.id,
        ("ReLU", {"inplace": True}),  # would overwrite the caller's tensor
        ("Conv2d", {"out_channels": 3, "padding": "same"}), ("BatchNorm2d", {}),
        ("ReLU", {"inplace": True}),  # kept: the classic conv-bn-relu
        ("Dropout", {"inplace": True}),  # ReLU's backward reads the tensor it would overwrite
        ("Conv2d", {"out_channels": 3, "padding": "same"}),
        ("SiLU", {"inplace": True}),  # kept
        ("Dropout", {"inplace": True}),  # kept: SiLU's backward does not read its output
        ("Conv2d", {"out_channels": 3, "padding": "same"}), ("Sigmoid", {}),
        ("ReLU", {"inplace": True}),  # Sigmoid's backward reads its output
        ("Flatten", {}))
    _chain(g, g.nodes[-1].id, ("Linear", {"out_features": 2}))
    gen = check_against_reference(g)
    assert gen.not_in_place == {on_input: "its input is the model's input",
                                drop_after_relu: "relu2 (in place) needs its output for gradients",
                                after_sigmoid: "sigmoid1 (Sigmoid) needs its output for gradients"}
    assert "            # not in place: its input is the model's input\n            nn.ReLU(),  # relu1: 2×6×6\n" \
        in gen.code
    assert gen.code.count("inplace=True") == 3  # relu2, silu1, dropout2
    assert after_bn not in gen.not_in_place and silu not in gen.not_in_place and drop_after_silu not in gen.not_in_place


def test_sequential_torch_would_fail_to_train_is_written_out_of_place():
    # nn.Sequential(nn.Sigmoid(), nn.ReLU(inplace=True)) raises in backward; the generated code does not.
    g = Graph()
    x = g.add_node("Input", {"shape": [4]})
    _chain(g, x.id, ("Linear", {"out_features": 4}), ("Sigmoid", {}), ("ReLU", {"inplace": True}),
           ("Linear", {"out_features": 2}))
    check_against_reference(g)


def _probe(type_name: str, inplace: bool, train: bool):
    """(output aliases the input, backward reads the output) for one block, asked of torch."""
    spec = get_spec(type_name)
    for shape in ((4, 6, 6), (6,)):
        g = Graph()
        x = g.add_node("Input", {"shape": list(shape)})
        params = {"inplace": True} if inplace else {}
        if type_name in ("Softmax", "LogSoftmax"):
            params["dim"] = 1
        n = g.add_node(type_name, {**spec.defaults(), **params})
        g.connect(x.id, n.id)
        info = analyze(g).nodes[n.id]
        if info.shape is not None:
            break
    else:
        pytest.fail(f"no input shape works for {type_name}")
    module = getattr(nn, type_name)(**spec.ctor_kwargs(info.resolved)).train(train)
    base = torch.randn(3, *shape, requires_grad=True)
    t = base * 1.0
    out = module(t)
    alias = out.untyped_storage().data_ptr() == t.untyped_storage().data_ptr()
    try:
        with torch.no_grad():
            out.mul_(1.0)
        out.sum().backward()
        reads = False
    except RuntimeError as exc:
        assert "modified by an inplace operation" in str(exc)
        reads = True
    return alias, reads


@pytest.mark.parametrize("type_name", sorted(t for t, s in REGISTRY.items() if s.module))
def test_inplace_tables_agree_with_torch(type_name):
    # The in-place plan trusts three tables; torch is asked whether each entry is true.
    for train in (False, True):
        alias, reads = _probe(type_name, False, train)
        if type_name in codegen.FRESH_OUTPUT:
            assert not alias and not reads, (type_name, train)
        elif alias:
            assert type_name in codegen.PASS_THROUGH, f"{type_name} returns its input: list it in PASS_THROUGH"
        if type_name in codegen.PASS_THROUGH:
            assert not reads
        if type_name in INPLACE_TYPES:
            alias, reads = _probe(type_name, True, train)
            assert alias
            assert reads == (type_name not in codegen.INPLACE_UNREAD), (type_name, train)


# -- names -----------------------------------------------------------------------------------

def test_module_attrs_cover_the_installed_torch():
    missing = module_attrs() - codegen.MODULE_ATTRS
    assert not missing, f"add to codegen.MODULE_ATTRS: {sorted(missing)}"


SPECIAL = sorted(module_attrs() | set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))
                 | {"torch", "nn", "F", "self", "x", "layers", "forward", "model", "Net", "__init__", "__class__",
                    "_modules", "_parameters", "x_", "half_", "layers_2", "conv1_out", "relu1", "add1"})
WEIRD = ["", "   ", "1st", "9", "__", "_", "Ünïcödé", "卷积", "١٢٣", "ﬁlter", "𝔥𝔞𝔩𝔣", "ＨＡＬＦ", "a\u2028b", "a\x85b",
         "\u202eevil\u202c", "x\ny", '"""', "'''", "\\", "#", "a # b", "import os; os.system('x')", "half ",
         "HALF", "Half!", "h-a-l-f", "conv 1", "conv_1", "CONV-1", "l", "I", "O", "assert", "x" * 80, "é" * 80,
         "長" * 80, "\ud800"]
names = st.one_of(st.sampled_from(SPECIAL), st.sampled_from(WEIRD), st.text(max_size=80))


def check_ast(gen: codegen.Generated) -> set[str]:
    """The code is a docstring, two imports, one class with __init__ and forward, and the demo;
    it calls nothing but nn layers, its own layers, torch.cat and the demo's few names. Returns
    the forward's local names."""
    tree = ast.parse(gen.code)
    assert [type(n).__name__ for n in tree.body] == ["Expr", "Import", "ImportFrom", "ClassDef", "If"]
    cls = tree.body[3]
    assert cls.name == gen.class_name and not cls.decorator_list and ast.unparse(cls.bases[0]) == "nn.Module"
    assert [f.name for f in cls.body] == ["__init__", "forward"]
    attrs = {a for a in gen.attr_of.values() if "." not in a} | {"layers"}
    fwd = cls.body[1]
    locals_ = {n.id for node in ast.walk(fwd) if isinstance(node, ast.Assign) for t in node.targets
               for n in ast.walk(t) if isinstance(n, ast.Name)}  # `a, b = torch.split(...)` unpacks a Split
    ok_names = {"torch", "nn", "self", "x", "super", "print", "model", "__name__", gen.class_name} | locals_
    choice_strings = {c for s in REGISTRY.values() for p in s.params for c in p.choices} | {"same", "valid"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            assert node.id in ok_names, node.id
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            assert node.attr in attrs, node.attr
        elif isinstance(node, ast.Call):
            f = ast.unparse(node.func)
            assert (f in ("super", "super().__init__", "print", "model", gen.class_name, "torch.cat", "torch.split",
                          "torch.chunk", "torch.randn", "nn.Sequential", "self.layers")
                    or (f.startswith("nn.") and f[3:] in REGISTRY)
                    or (f.startswith("self.") and f[5:] in attrs)), f
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert node.value in choice_strings or node.value == "__main__" or node is tree.body[0].value
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            assert [a.name for a in node.names] in (["torch"], ["nn"])
        assert not isinstance(node, (ast.Lambda, ast.Subscript, ast.FunctionDef)) or \
            (isinstance(node, ast.FunctionDef) and node in cls.body)
    assert not (locals_ - {"x", "_"}) & (RESERVED | set(dir(builtins)) | {"torch", "nn", "F", "self"})
    return locals_


def check_names(g: Graph, gen: codegen.Generated) -> None:
    taken = module_attrs() | set(keyword.kwlist) | set(dir(builtins)) | {"torch", "nn", "F", "self", "x"}
    own = [a for a in gen.attr_of.values() if "." not in a]
    assert len(own) == len(set(own))
    for a in own:
        assert a.isidentifier() and a.isascii() and not a.startswith("_") and a not in taken, a


@FUZZ
@given(graphs(max_blocks=6), st.lists(names, min_size=1, max_size=12), names)
def test_hostile_names_give_working_code(g, drawn, title):
    for i, n in enumerate(g):
        if n.type != "Input":
            g.rename(n.id, drawn[i % len(drawn)])  # fewer names than blocks: duplicates
    gen = generate(g, class_name=title, title=title)
    check_ast(gen)
    check_names(g, gen)
    gen, model, ref = _pair(g, gen)
    x = torch.randn(2, *analyze(g).input_shape)
    model.eval(), ref.eval()
    with torch.no_grad():
        y = model(x)
        assert_same(y, ref(x))
        again = _class_from(gen.code, gen.class_name)()
        again.load_state_dict(model.state_dict())  # strict: the same keys
        assert torch.equal(again.eval()(x), y)
    for nid, path in gen.attr_of.items():
        if g.node(nid).spec.module:
            assert getattr(model, path.split(".")[0]) is model.get_submodule(path.split(".")[0]), f"{path} is shadowed"


def test_names_reduce_to_safe_unique_identifiers():
    assert identifier("half") == "half_" and identifier("training") == "training_"
    assert identifier("Ünïcödé") == "unicode" and identifier("ﬁlter") == "filter_"
    assert identifier("卷积", "conv") == "conv" and identifier("   ", "relu") == "relu"
    assert identifier("1st", "conv") == "conv_1st" and identifier("١٢٣", "fc") == "fc"
    assert identifier("x") == "x_" and identifier("torch") == "torch_"
    assert identifier("T_destination") == "t_destination"  # lowercase: no longer nn.Module's
    g = load_project("resources/examples/resnet_small.json").graph
    for n, name in zip([n for n in g if n.type != "Input"], ["conv 1", "conv_1", "CONV-1", "half", "half_", "卷积"],
                       strict=False):
        g.rename(n.id, name)
    gen = generate(g)
    check_names(g, gen)
    for line in ("self.conv_1 = nn.Conv2d(3, 16, kernel_size=3, padding=1, bias=False)  # block conv 1",
                 "self.conv_1_2 = nn.BatchNorm2d(16)  # block conv_1", "self.conv_1_3 = nn.ReLU()  # block CONV-1",
                 "self.half_ = nn.Conv2d(16, 16, kernel_size=3, padding=1, bias=False)  # block half",
                 "self.half_2 = nn.BatchNorm2d(16)  # block half_", "self.relu = nn.ReLU()  # block 卷积",
                 "half_ = self.half_(x)  # 16×32×32"):
        assert f"        {line}\n" in gen.code


def test_a_name_torch_takes_later_is_refused_by_instantiate(monkeypatch):
    g = load_project("resources/examples/resnet_small.json").graph
    first = next(n for n in g if n.type == "Conv2d")
    g.rename(first.id, "half")
    monkeypatch.setattr(codegen, "RESERVED", codegen.RESERVED - {"half"})
    gen = generate(g)
    with pytest.raises(codegen.CodegenError, match="rename the block"):
        instantiate(gen)


def test_hostile_names_stay_ruff_clean(tmp_path):
    # Long names, many merge inputs, wide characters and random graphs: the file still passes ruff check and format.
    r = random.Random(7)
    pool = SPECIAL + WEIRD + ["a" * 40 + str(i) for i in range(5)] + ["長い名前" * 5]
    for k in range(12):
        g = Graph()
        x = g.add_node("Input", {"shape": [2, 4, 4]})
        heads = []
        for _ in range(r.randint(2, 7)):
            conv = {"out_channels": 2, "kernel_size": (3, 1), "stride": 1, "padding": (2, 0), "dilation": (2, 1),
                    "groups": 2, "bias": False, "padding_mode": "reflect"}
            heads.append(_chain(g, x.id, ("Conv2d", conv), ("ReLU", {"inplace": True}))[-1])
        merge = g.add_node("Add" if k % 2 else "Concat", {})
        for h in heads:
            g.connect(h, merge.id)
        for n in g:
            if n.type != "Input":
                g.rename(n.id, r.choice(pool))
        (tmp_path / f"m{k}.py").write_text(generate(g, class_name=r.choice(pool), title=r.choice(pool)).code,
                                           encoding="utf-8")

    written = []

    @settings(FUZZ, database=None)
    @given(graphs(max_blocks=12), st.lists(names, min_size=1, max_size=12), names)
    def write(g, drawn, title):
        for i, n in enumerate(g):
            if n.type != "Input":
                g.rename(n.id, drawn[i % len(drawn)])
        f = tmp_path / f"g{len(written)}.py"
        f.write_text(generate(g, class_name=title, title=title).code, encoding="utf-8")
        written.append(f)

    write()
    assert_ruff_clean(tmp_path)


def test_training_works_with_blocks_named_after_module_attributes():
    from cnnbuilder.core.training.config import TrainConfig
    from cnnbuilder.core.training.engine import Trainer
    from cnnbuilder.core.training.events import Finished

    g = load_project("resources/examples/mnist_cnn.json").graph
    taken = iter(["half", "training", "to", "cuda", "eval", "forward", "state_dict", "zero_grad", "apply", "x"])
    for n in g:
        if n.type != "Input":
            g.rename(n.id, next(taken, "children"))
        if n.type == "ReLU":
            g.set_param(n.id, "inplace", True)
    cfg = TrainConfig(shapes_train=64, shapes_test=32, val_split=0.25, batch_size=32, epochs=1)
    events = list(Trainer(g, cfg).run())
    assert isinstance(events[-1], Finished), events[-1]


def test_feature_maps_show_a_block_output_before_an_inplace_block_overwrites_it():
    from cnnbuilder.core.training import featuremaps

    g = Graph()
    x = g.add_node("Input", {"shape": [1, 6, 6]})
    conv, _, _, _ = _chain(g, x.id, ("Conv2d", {"out_channels": 4, "padding": 1}), ("ReLU", {"inplace": True}),
                           ("Conv2d", {"out_channels": 4, "padding": 1}), ("ReLU", {"inplace": True}))
    gen = generate(g)
    assert not gen.not_in_place  # both ReLUs overwrite their input: the maps must be copies
    model = instantiate(gen)
    sample = torch.randn(1, 1, 6, 6)
    with torch.no_grad():
        want = model.get_submodule(gen.attr_of[conv])(sample)[0]
    assert (want < 0).any()
    maps, total, msg = featuremaps.capture(model, g, gen.attr_of, conv, sample)
    assert total == 4 and not msg
    assert torch.allclose(torch.from_numpy(maps), want)
