import pytest

from cnnbuilder.core.blocks import ParamError
from cnnbuilder.core.graph import CycleError, Graph, GraphError
from cnnbuilder.core.project import load_project
from cnnbuilder.core.shapes import analyze


def chain(*specs, shape=(1, 28, 28)):
    g = Graph()
    prev = g.add_node("Input", {"shape": list(shape)}).id
    ids = [prev]
    for t, p in specs:
        n = g.add_node(t, p).id
        g.connect(prev, n)
        prev = n
        ids.append(n)
    return g, ids


def test_mnist_tutorial_numbers_match_the_hand_computation():
    a = analyze(load_project("resources/examples/mnist_cnn.json").graph)
    shapes = [a.nodes[n].shape for n in a.order]
    assert shapes == [(1, 28, 28), (16, 28, 28), (16, 28, 28), (16, 14, 14), (32, 14, 14), (32, 14, 14),
                      (32, 7, 7), (1568,), (10,)]
    # conv1: 16·(1·5·5)+16; conv2: 32·(16·5·5)+32; fc: 1568·10+10
    assert a.total_params == 416 + 12832 + 15690
    assert a.total_macs == 16 * 28 * 28 * 25 + 32 * 14 * 14 * 16 * 25 + 1568 * 10


def test_graph_refuses_cycles_self_loops_and_second_inputs():
    g, ids = chain(("ReLU", {}), ("ReLU", {}))
    g2, ids2 = chain(("ReLU", {}))
    merge = g2.add_node("Add").id
    g2.connect(ids2[1], merge)
    relu = g2.add_node("ReLU").id
    g2.connect(merge, relu)
    with pytest.raises(CycleError, match="would create a cycle"):
        g2.connect(relu, merge)
    with pytest.raises(GraphError, match="cannot feed itself"):
        g.connect(ids[1], ids[1])
    extra = g.add_node("ReLU").id
    with pytest.raises(GraphError, match="takes one input"):
        g.connect(extra, ids[1])
    g.rename(extra, "recycle")  # a name with "cycle" in it does not make a refusal a cycle
    g.connect(ids[0], extra)
    with pytest.raises(GraphError, match="already connected to recycle") as refused:
        g.connect(ids[0], extra)
    assert not isinstance(refused.value, CycleError)
    with pytest.raises(GraphError, match="takes no inputs"):
        g.connect(extra, ids[0])
    with pytest.raises(GraphError, match="already connected"):
        g.connect(ids[0], ids[1])


def test_bad_params_are_refused_with_the_field_name():
    g = Graph()
    n = g.add_node("Conv2d").id
    for key, value, msg in [("kernel_size", 0, "at least 1"), ("kernel_size", 10**9, "at most"),
                            ("out_channels", -4, "at least 1"), ("padding", "full", "'same' or 'valid'"),
                            ("bias", "yes", "true or false"), ("padding_mode", "mirror", "one of"),
                            ("stride", [1, 2, 3], "pair"), ("nonsense", 1, "no parameter")]:
        with pytest.raises(ParamError) as err:
            g.set_param(n, key, value)
        assert err.value.param == key and msg in str(err.value)


def test_huge_kernel_is_flagged_not_crashing():
    g, ids = chain(("Conv2d", {"out_channels": 4, "kernel_size": 1000000}))
    assert "kernel 1000000×1000000 is larger than the padded input 28×28" == analyze(g).nodes[ids[1]].error


def test_errors_propagate_as_waiting():
    g, ids = chain(("Conv2d", {"out_channels": 4, "kernel_size": 50}), ("ReLU", {}), ("Flatten", {}))
    a = analyze(g)
    assert not a.nodes[ids[1]].waiting
    assert a.nodes[ids[2]].waiting and "waiting on conv1" in a.nodes[ids[2]].error
    assert a.nodes[ids[3]].waiting


def test_add_mismatch_message():
    g, ids = chain(("Conv2d", {"out_channels": 16, "kernel_size": 3, "stride": 2, "padding": 1}),
                   shape=(3, 28, 28))
    other = g.add_node("Conv2d", {"out_channels": 32, "kernel_size": 3, "stride": 2, "padding": 1}).id
    g.connect(ids[0], other)
    add = g.add_node("Add").id
    g.connect(ids[1], add)
    g.connect(other, add)
    assert analyze(g).nodes[add].error == "Add inputs differ: 16×14×14 vs 32×14×14"


def test_graph_level_problems():
    g = Graph()
    g.add_node("ReLU")
    a = analyze(g)
    assert any("no Input" in p.message for p in a.problems)

    g, ids = chain(("ReLU", {}))
    lonely = g.add_node("Conv2d").id
    a = analyze(g)
    assert a.nodes[lonely].error == "Conv2d needs an input: connect a block to it"

    g, ids = chain(("ReLU", {}))
    second = g.add_node("Input").id
    assert "one input" in analyze(g).nodes[second].error

    g, ids = chain(("ReLU", {}), ("Sigmoid", {}))
    branch = g.add_node("Tanh").id
    g.connect(ids[1], branch)
    a = analyze(g)
    assert "goes nowhere" in (a.nodes[branch].error or a.nodes[ids[2]].error)

    g, ids = chain(("ReLU", {}))
    add = g.add_node("Add").id
    g.connect(ids[1], add)
    assert analyze(g).nodes[add].error == "Add needs at least 2 inputs (has 1)"

    g = Graph()
    g.add_node("Input")
    assert any("no blocks after the Input" in p.message for p in analyze(g).problems)


def test_topo_order_follows_file_order_for_ties():
    g = load_project("resources/examples/inception_block.json").graph
    order = g.topo_order()
    assert order[0] == "n1"
    pos = {n: i for i, n in enumerate(order)}
    for s, d in g.edges:
        assert pos[s] < pos[d]


def test_signals_fire_once_per_batch():
    g = Graph()
    hits = []
    g.changed.connect(lambda: hits.append(1))
    with g.batch():
        a = g.add_node("Input").id
        b = g.add_node("ReLU").id
        g.connect(a, b)
    assert hits == [1]
    g.move(b, (5, 5))
    assert hits == [1]  # moves do not touch shapes or code


def test_inferred_values_are_reported_and_typed_mismatch_flagged():
    g, ids = chain(("Conv2d", {"out_channels": 8, "kernel_size": 3}), ("BatchNorm2d", {}), ("Flatten", {}),
                   ("Linear", {"out_features": 10, "in_features": 5}))
    a = analyze(g)
    assert a.nodes[ids[1]].resolved["in_channels"] == 1
    assert a.nodes[ids[2]].resolved["num_features"] == 8
    assert a.nodes[ids[4]].error == "in_features is 5 but the input has 5408 features"


def test_signal_drops_dead_bound_methods_and_disconnects():
    from cnnbuilder.core.graph import Graph as G

    class View:
        def __init__(self):
            self.hits = 0

        def on_changed(self):
            self.hits += 1

    g = G()
    v = View()
    g.changed.connect(v.on_changed)
    g.add_node("Input")
    assert v.hits == 1
    del v
    g.add_node("ReLU")  # the dead view is skipped, not called
    assert len(g.changed) == 0
    calls = []
    slot = g.changed.connect(lambda: calls.append(1))
    g.add_node("ReLU")
    g.changed.disconnect(slot)
    g.add_node("ReLU")
    assert calls == [1]
    with pytest.raises(ValueError):
        g.changed.disconnect(slot)
