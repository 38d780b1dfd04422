import ast
import subprocess
import sys

import pytest
import torch

from cnnbuilder.core.codegen import CodegenError, build_model, generate, identifier
from cnnbuilder.core.graph import Graph
from cnnbuilder.core.project import load_project
from cnnbuilder.core.shapes import analyze

from .reference import Interpreter, assert_ruff_clean, copy_weights, one_thread, random_graph  # noqa: F401 (autouse)


def _exec(code: str):
    ns = {"__name__": "generated_test"}
    exec(compile(code, "<generated>", "exec"), ns)
    return ns



def _same_outputs(graph: Graph, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(graph).eval()
    ref = Interpreter(graph).eval()
    copy_weights(model, ref)
    shape = analyze(graph).input_shape
    x = torch.randn(3, *shape)
    with torch.no_grad():
        y1, y2 = model(x), ref(x)
    assert y1.shape == y2.shape
    # Tight, not bitwise: a loaded machine may pick another oneDNN kernel for the same conv.
    assert torch.allclose(y1, y2, rtol=1e-5, atol=1e-6), (y1 - y2).abs().max()
    a = analyze(graph)
    assert tuple(y1.shape[1:]) == a.output_shape
    assert sum(p.numel() for p in model.parameters()) == a.total_params


def test_examples_generate_code_that_matches_the_interpreter(example_path):
    project = load_project(example_path)
    _same_outputs(project.graph)


@pytest.mark.parametrize("seed", range(25))
def test_random_graphs_generate_working_code(seed):
    g = random_graph(seed)
    assert analyze(g).ok
    _same_outputs(g, seed)


def test_chain_becomes_sequential_with_shape_comments(tmp_path):
    g = load_project("resources/examples/mnist_cnn.json").graph
    code = generate(g, title="MNIST tutorial CNN").code
    assert "self.layers = nn.Sequential(" in code
    assert "nn.Conv2d(1, 16, kernel_size=5, padding=2),  # conv1: 16×28×28" in code
    assert "nn.MaxPool2d(2)," in code
    assert "nn.Linear(1568, 10),  # fc1: 10" in code
    assert "return self.layers(x)  # 1×28×28 -> 10" in code


def test_branches_get_explicit_forward_with_a_shape_comment_per_line():
    g = load_project("resources/examples/resnet_small.json").graph
    gen = generate(g)
    forward = gen.code.split("def forward", 1)[1].split("return", 1)[0]
    body = [ln for ln in forward.splitlines()[1:] if ln.strip()]
    assert body and all("  # " in ln for ln in body)
    assert "x = block1_conv1 + x  # 16×32×32" in gen.code or " + " in gen.code
    inception = generate(load_project("resources/examples/inception_block.json").graph).code
    assert "torch.cat([" in inception and "dim=1)" in inception


@pytest.mark.parametrize("name", ["import os; os.system('rm -rf /')", "x\nimport os", "class", "9lives",
                                  '"""', "self", "conv 1 / weird!", "Ünïcödé"])
def test_block_names_cannot_inject_code(name):
    g = load_project("resources/examples/resnet_small.json").graph
    for n in g:
        if n.type == "Conv2d":
            g.rename(n.id, name)
            break
    code = generate(g, class_name=name, title=name).code
    ns = _exec(code)  # would fail on a syntax error
    tree = ast.parse(code)
    # Only the docstring, the two torch imports, the class and the __main__ demo at top level,
    # and no name anywhere that the user's text could have smuggled in.
    kinds = [type(node).__name__ for node in tree.body]
    assert kinds == ["Expr", "Import", "ImportFrom", "ClassDef", "If"], kinds
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names}
    assert imported == {"torch", "nn"}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert "os" not in names
    cls = [v for k, v in ns.items() if isinstance(v, type) and issubclass(v, torch.nn.Module) and k != "nn"]
    assert cls


def test_identifier_rules():
    assert identifier("Conv 1") == "conv_1"
    assert identifier("1st") == "layer_1st"
    assert identifier("for") == "for_"
    assert identifier("x") == "x_"
    assert identifier("!!!") == "layer"


def test_invalid_graph_refuses_with_the_problems():
    g = load_project("resources/examples/mnist_cnn.json").graph
    flatten = g.find("flatten1").id
    g.remove_node(flatten)
    with pytest.raises(CodegenError) as err:
        generate(g)
    assert "needs an input" in str(err.value)


def test_duplicate_names_get_unique_attributes():
    g = load_project("resources/examples/resnet_small.json").graph
    for n in g:
        if n.type != "Input":
            g.rename(n.id, "layer")
    _same_outputs(g)


def test_generated_code_is_ruff_clean(tmp_path, example_path):
    code = generate(load_project(example_path).graph, title=example_path.stem).code
    f = tmp_path / "model.py"
    f.write_text(code)
    assert_ruff_clean(f)


def test_generated_file_runs_as_a_script(tmp_path):
    code = generate(load_project("resources/examples/lenet5.json").graph).code
    f = tmp_path / "model.py"
    f.write_text(code)
    out = subprocess.run([sys.executable, str(f)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "torch.Size([1, 10])" in out.stdout


def test_a_list_of_sizes_is_written_whole_even_when_its_sizes_are_equal():
    # normalized_shape (4, 4) once came out as nn.LayerNorm(4): 8 parameters instead of 32.
    g = Graph()
    x = g.add_node("Input", {"shape": [4, 4]}).id
    ln = g.add_node("LayerNorm", {}).id
    g.connect(x, ln)
    un = g.add_node("Unflatten", {"dim": 2, "unflattened_size": [2, 2]}).id
    g.connect(ln, un)
    code = generate(g).code
    assert "nn.LayerNorm((4, 4))" in code and "nn.Unflatten(2, (2, 2))" in code
    model = build_model(g)
    assert sum(p.numel() for p in model.parameters()) == analyze(g).total_params == 32
    assert model(torch.zeros(2, 4, 4)).shape == (2, 4, 2, 2)
