"""The Look inside tab's core (issue 11 §2-§4): filters of a convolution as tiles with a weight
histogram, and one request-level `look` that answers with plain, picklable data or a message."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from cnnbuilder.core.graph import Graph
from cnnbuilder.core.inspect.look import (
    FILTERS,
    MAX_FILTERS,
    PREDICT,
    LookError,
    LookRequest,
    LookResult,
    filters_of,
    look,
    mosaic,
)
from cnnbuilder.core.inspect.predict import build
from cnnbuilder.core.project import graph_to_dict
from cnnbuilder.core.training.checkpoint import export_weights
from tests.core.tiny_training import TINY_CFG, tiny_graph
from tests.fuzz import HUGE_INTS, NASTY_TEXT, fuzz_settings, mutate_json


def chain(*blocks) -> Graph:
    g = Graph()
    ids = [g.add_node(t, p).id for t, p in blocks]
    for a, b in zip(ids, ids[1:], strict=False):
        g.connect(a, b)
    return g


def rgb_graph(out=8, k=5):
    return chain(("Input", {"shape": [3, 16, 16]}), ("Conv2d", {"out_channels": out, "kernel_size": k}),
                 ("ReLU", {}), ("Conv2d", {"out_channels": 12, "kernel_size": 3}), ("Flatten", {}),
                 ("Linear", {"out_features": 10}))


def conv_ids(g):
    return [n.id for n in g if n.type == "Conv2d"]


def test_first_layer_on_colour_images_is_drawn_in_rgb_each_filter_to_its_range():
    g = rgb_graph()
    lm = build(g, seed=3)
    first, second = conv_ids(g)
    grid = filters_of(lm.model, g, lm.attr_of, first)
    w = lm.model.get_submodule(lm.attr_of[first]).weight.detach().numpy()
    assert grid.rgb and grid.tiles.shape == (8, 5, 5, 3) and grid.total == 8
    f0 = w[0].transpose(1, 2, 0)
    np.testing.assert_allclose(grid.tiles[0], (f0 - f0.min()) / (f0.max() - f0.min()), atol=1e-6)
    assert grid.hist_counts.sum() == w.size and len(grid.hist_edges) == len(grid.hist_counts) + 1
    assert grid.hist_edges[0] <= w.min() and grid.hist_edges[-1] >= w.max()
    assert "RGB" in grid.caption
    # 12 filters over 8 inputs = 96 pairs > 64: one tile per filter, its mean over the inputs.
    grid2 = filters_of(lm.model, g, lm.attr_of, second)
    w2 = lm.model.get_submodule(lm.attr_of[second]).weight.detach().numpy().mean(axis=1)
    assert not grid2.rgb and grid2.tiles.shape == (12, 3, 3)
    np.testing.assert_allclose(grid2.tiles, 0.5 + 0.5 * w2 / np.abs(w2).max(), atol=1e-6)
    assert "mean over its 8 input channels" in grid2.caption


def test_few_pairs_get_one_tile_each_and_many_filters_are_capped():
    g = tiny_graph()  # 1 input channel, 2 filters: 2 pairs
    lm = build(g)
    (conv,) = conv_ids(g)
    grid = filters_of(lm.model, g, lm.attr_of, conv)
    assert grid.tiles.shape == (2, 3, 3) and "pair" in grid.caption
    big = chain(("Input", {"shape": [3, 8, 8]}), ("Conv2d", {"out_channels": 100, "kernel_size": 3}),
                ("Flatten", {}), ("Linear", {"out_features": 10}))
    lm = build(big)
    grid = filters_of(lm.model, big, lm.attr_of, conv_ids(big)[0])
    assert grid.tiles.shape[0] == MAX_FILTERS and grid.total == 100 and f"of {100}" in grid.caption
    m = mosaic(grid)
    assert m.shape == (8 * 4 - 1, 8 * 4 - 1, 3) and np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1


def test_non_conv_blocks_and_unknown_ids_are_refused_with_their_names():
    g = tiny_graph()
    lm = build(g)
    lin = next(n for n in g if n.type == "Linear")
    with pytest.raises(LookError, match=f"{lin.label} \\(Linear\\).*Conv2d"):
        filters_of(lm.model, g, lm.attr_of, lin.id)
    with pytest.raises(LookError, match="no block"):
        filters_of(lm.model, g, lm.attr_of, "nope")


def req(kind, graph=None, **kw):
    return LookRequest(1, kind, graph_to_dict(graph or tiny_graph()), TINY_CFG.to_dict(), **kw)


def test_look_filters_and_predict_a_test_sample_answer_with_picklable_plain_data():
    g = tiny_graph()
    (conv,) = conv_ids(g)
    lm = build(g, seed=5)
    r = look(req(FILTERS, g, node_id=conv), model=lm.model, source="mine")
    assert r.message == "" and r.source == "mine" and r.filters.tiles.shape == (2, 3, 3)
    p = look(req(PREDICT, g, test_index=3, method="gradcam"), model=lm.model)
    assert p.message == "", p.message
    assert p.display.shape == (16, 16, 3) and p.display.dtype == np.uint8
    assert len(p.top) == 5 and abs(sum(pr for _, pr in p.top) - 1) < 1 and p.top[0][1] >= p.top[-1][1]
    assert p.heat.shape == (16, 16) and p.block == conv and p.blocks[0][0] == conv
    assert "test sample 3" in p.image_name and p.class_names
    back = pickle.loads(pickle.dumps(p))
    np.testing.assert_array_equal(back.heat, p.heat)
    for method in ("saliency", "smoothgrad"):
        m = look(req(PREDICT, g, test_index=0, method=method, target=2), model=lm.model)
        assert m.message == "" and m.method == method and m.target == 2 and m.heat.shape == (16, 16)


def test_look_uses_a_weights_file_and_converts_a_colour_image(tmp_path):
    g = tiny_graph()
    lm = build(g, seed=9)
    export_weights(lm.model, g, tmp_path)
    pt = next(tmp_path.glob("*.pt"))
    img = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(img)
    r = look(req(PREDICT, g, image=str(img), weights=("file", str(pt))))
    assert r.message == "", r.message
    assert any("resized from 30×40 to 16×16" in n for n in r.notes)
    assert any("converted from RGB to grayscale" in n for n in r.notes)
    assert str(pt) in r.source or "model" in r.source
    assert r.image_name == "photo.png"


@pytest.mark.parametrize("kw, words", [
    (dict(image="/no/such.png"), "no such file"),
    (dict(test_index=10_000), "does not exist"),
    (dict(test_index=-1), "does not exist"),
    (dict(), "open an image"),
    (dict(image="x", weights=("file", "/no/weights.pt")), "weights.pt"),
])
def test_bad_predict_requests_come_back_as_one_line_messages(kw, words):
    r = look(req(PREDICT, **kw))
    assert words in r.message and "\n" not in r.message and r.display is None


def test_bad_files_and_graphs_are_messages_not_exceptions(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png at all")
    assert "not an image" in look(req(PREDICT, image=str(junk))).message
    bad_weights = tmp_path / "w.pt"
    bad_weights.write_bytes(b"\x00garbage")
    assert "w.pt" in look(req(PREDICT, image=str(junk), weights=("file", str(bad_weights)))).message
    broken = chain(("Input", {"shape": [1, 16, 16]}), ("Conv2d", {"out_channels": 2, "kernel_size": 40}))
    assert "fix the model" in look(req(FILTERS, broken, node_id="x")).message
    assert "select a Conv2d" in look(req(FILTERS)).message
    assert "unknown request" in look(req("dance")).message


@fuzz_settings(25, 300)
@given(seed=st.integers(0, 2**32 - 1))
def test_hostile_requests_never_raise_and_answer_in_one_line(seed):
    """Whatever a request holds (hostile numbers and text, mutated graphs), look() answers with a
    result or one line, never a traceback."""
    r = random.Random(seed)
    g = tiny_graph()
    graph = graph_to_dict(g)
    if r.random() < 0.3:
        graph = mutate_json(graph, r)
    pick = lambda pool: r.choice(pool)  # noqa: E731
    request = LookRequest(r.randrange(-5, 5), pick([FILTERS, PREDICT, "x", ""]), graph, TINY_CFG.to_dict(),
                          node_id=pick([None, "n2", "nope", *NASTY_TEXT[:3]]),
                          image=pick([None, "/no/such", "", *NASTY_TEXT[:3]]),
                          test_index=pick([None, 0, 5, -1, *HUGE_INTS[:3]]),
                          method=pick([None, "gradcam", "saliency", "smoothgrad", "magic"]),
                          block=pick([None, "n2", "n9", "zz"]), target=pick([None, 0, 9, 10, -3, *HUGE_INTS[:2]]))
    result = look(request)
    assert isinstance(result, LookResult) and result.run_id == request.tag
    if result.message:
        assert "\n" not in result.message and "Traceback" not in result.message
    else:
        assert result.filters is not None or result.display is not None
