"""Activation blocks: elementwise functions and (Log)Softmax."""

from __future__ import annotations

from .base import BOOL, CHOICE, DIM, FLOAT, INT, MAX_SIZE, Ctx, LayerSpec, Param, ShapeError
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


def _hardtanh_infer(ctx: Ctx):
    lo, hi = ctx.params["min_val"], ctx.params["max_val"]
    if hi <= lo:
        raise ShapeError(f"max_val ({hi:g}) must be greater than min_val ({lo:g})")
    return ctx.inputs[0]


HARDTANH = LayerSpec(
    type="Hardtanh", category="Activation", short="hardtanh",
    doc="Applies the HardTanh function element-wise: x clamped to [min_val, max_val].",
    params=(Param("min_val", FLOAT, -1.0, "Lower end of the linear region."),
            Param("max_val", FLOAT, 1.0, "Upper end of the linear region."), INPLACE),
    infer=_hardtanh_infer,
    summary=lambda p: "Hardtanh" if (p["min_val"], p["max_val"]) == (-1.0, 1.0)
    else f"Hardtanh [{p['min_val']:g}, {p['max_val']:g}]",
)


def _prelu_infer(ctx: Ctx):
    shape = ctx.inputs[0]
    n = ctx.params["num_parameters"]
    if n != 1 and n != shape[0]:
        raise ShapeError(f"num_parameters is {n} but the input has {shape[0]} channels (use 1, or {shape[0]} for "
                         "one slope per channel)")
    return shape


PRELU = LayerSpec(
    type="PReLU", category="Activation", short="prelu",
    doc="Applies PReLU element-wise: x if x > 0 else a·x, with a learnt slope a (one, or one per channel).",
    params=(Param("num_parameters", INT, 1, "Learnt slopes: 1 for all channels, or the number of channels.",
                  min=1, max=MAX_SIZE),
            Param("init", FLOAT, 0.25, "Initial value of the slopes.")),
    infer=_prelu_infer,
    count_params=lambda p, i, o: p["num_parameters"],
    summary=lambda p: "PReLU" if p["num_parameters"] == 1 else f"PReLU ×{p['num_parameters']}",
)

SPECS = (
    _act("ReLU", "Applies the rectified linear unit function element-wise: max(0, x).", "relu", (INPLACE,)),
    _act("ReLU6", "Applies ReLU6 element-wise: min(max(0, x), 6) (MobileNet).", "relu6", (INPLACE,)),
    _act("LeakyReLU", "Applies LeakyReLU element-wise: x if x > 0 else negative_slope·x.", "leaky_relu",
         (Param("negative_slope", FLOAT, 0.01, "Slope for negative inputs."), INPLACE),
         lambda p: "LeakyReLU" if p["negative_slope"] == 0.01 else f"LeakyReLU {p['negative_slope']:g}"),
    _act("ELU", "Applies the Exponential Linear Unit function element-wise.", "elu",
         (Param("alpha", FLOAT, 1.0, "Value the function tends to for very negative inputs."), INPLACE)),
    _act("GELU", "Applies the Gaussian Error Linear Units function.", "gelu",
         (Param("approximate", CHOICE, "none", "Exact GELU, or its tanh approximation.", choices=("none", "tanh")),)),
    PRELU,
    _act("SiLU", "Applies the Sigmoid Linear Unit (swish) function element-wise: x·sigmoid(x).", "silu", (INPLACE,)),
    _act("Mish", "Applies the Mish function element-wise: x·tanh(softplus(x)).", "mish", (INPLACE,)),
    _act("Hardswish", "Applies the Hardswish function element-wise: x·ReLU6(x + 3)/6 (MobileNetV3).", "hardswish",
         (INPLACE,)),
    _act("Hardsigmoid", "Applies the Hardsigmoid function element-wise: ReLU6(x + 3)/6 (squeeze-excite gates).",
         "hardsigmoid", (INPLACE,)),
    HARDTANH,
    _act("Sigmoid", "Applies the Sigmoid function element-wise: 1 / (1 + exp(-x)).", "sigmoid"),
    _act("Tanh", "Applies the Hyperbolic Tangent function element-wise.", "tanh"),
    _softmax("Softmax", "Rescales a dimension so its elements lie in [0, 1] and sum to 1.", "softmax"),
    _softmax("LogSoftmax", "Applies log(Softmax(x)); pair it with NLLLoss.", "log_softmax"),
)
