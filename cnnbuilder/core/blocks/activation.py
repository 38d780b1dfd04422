"""Activation blocks: elementwise functions and (Log)Softmax."""

from __future__ import annotations

from .base import BOOL, CHOICE, DIM, FLOAT, Ctx, LayerSpec, Param
from .rules import normalize_dim

INPLACE = Param("inplace", BOOL, False, "Overwrite the input tensor to save memory; the code keeps this only where "
                                        "no other block still needs that tensor.")


def _same(ctx: Ctx):
    return ctx.inputs[0]


def _act(type_name: str, doc: str, short: str, params: tuple[Param, ...] = (), summary=None) -> LayerSpec:
    return LayerSpec(type=type_name, category="Activation", doc=doc, short=short, params=params,
                     infer=_same, summary=summary)


def _softmax_infer(ctx: Ctx):
    normalize_dim(ctx.params["dim"], len(ctx.inputs[0]))
    return ctx.inputs[0]


def _softmax(type_name: str, doc: str, short: str) -> LayerSpec:
    return LayerSpec(
        type=type_name, category="Activation", doc=doc, short=short,
        # torch's default dim=None is deprecated guesswork; 1 is the class dimension.
        params=(Param("dim", DIM, 1, "Dimension to normalize over (1 = classes; 0 is the batch).",
                      required=True),),
        infer=_softmax_infer,
    )


SPECS = (
    _act("ReLU", "Applies the rectified linear unit function element-wise: max(0, x).", "relu", (INPLACE,)),
    _act("LeakyReLU", "Applies LeakyReLU element-wise: x if x > 0 else negative_slope·x.", "leaky_relu",
         (Param("negative_slope", FLOAT, 0.01, "Slope for negative inputs."), INPLACE),
         lambda p: "LeakyReLU" if p["negative_slope"] == 0.01 else f"LeakyReLU {p['negative_slope']:g}"),
    _act("ELU", "Applies the Exponential Linear Unit function element-wise.", "elu",
         (Param("alpha", FLOAT, 1.0, "Value the function tends to for very negative inputs."), INPLACE)),
    _act("GELU", "Applies the Gaussian Error Linear Units function.", "gelu",
         (Param("approximate", CHOICE, "none", "Exact GELU, or its tanh approximation.", choices=("none", "tanh")),)),
    _act("SiLU", "Applies the Sigmoid Linear Unit (swish) function element-wise: x·sigmoid(x).", "silu", (INPLACE,)),
    _act("Sigmoid", "Applies the Sigmoid function element-wise: 1 / (1 + exp(-x)).", "sigmoid"),
    _act("Tanh", "Applies the Hyperbolic Tangent function element-wise.", "tanh"),
    _softmax("Softmax", "Rescales a dimension so its elements lie in [0, 1] and sum to 1.", "softmax"),
    _softmax("LogSoftmax", "Applies log(Softmax(x)); pair it with NLLLoss.", "log_softmax"),
)
