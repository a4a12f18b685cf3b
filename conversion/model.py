"""The multi-head MobileNetV2 attribute model (Keras), with named dict outputs that survive TFLite conversion."""

from __future__ import annotations

from typing import Any

from conversion.labels import AGE_GROUPS, GENDERS, RACES

HEADS: dict[str, int] = {"age": len(AGE_GROUPS), "gender": len(GENDERS), "race": len(RACES)}
OUTPUT_NAMES: tuple[str, ...] = ("age", "age_years", "gender", "race")
DEX_OUTPUTS: tuple[str, ...] = ("age_bins", "age_years_dex")  # optional DEX age: softmax over years, expectation
AGE_BINS = 101  # DEX bins: 0, 1, ..., 100 years
AGE_SCALE = 100.0  # age_years is regressed as years / AGE_SCALE, then scaled back inside the graph


def build_model(alpha: float = 1.0, input_size: int = 64, dropout: float = 0.2, dex: bool = False) -> Any:
    """MobileNetV2 backbone + softmax heads `age`, `gender`, `race` and a regression head `age_years` (years).

    With `dex`, also DEX-style age (Rothe et al.): `age_bins`, a softmax over 0..100 years, and `age_years_dex`, its
    expectation, computed in the graph so both estimates can be compared after int8 conversion.
    The input is float RGB normalised to [-1, 1] (the MobileNetV2 convention), shape (S, S, 3).
    """
    import keras

    inp = keras.Input((input_size, input_size, 3), name="image")
    backbone = keras.applications.MobileNetV2(
        input_shape=(input_size, input_size, 3), alpha=alpha, include_top=False, weights=None, pooling="avg"
    )
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # Keras' 0.999 lags far behind fine-tuned weights; 0.99 keeps inference statistics current.
            layer.momentum = 0.99
    feat = backbone(inp)
    feat = keras.layers.Dropout(dropout, name="head_dropout")(feat)
    out: dict[str, Any] = {}
    for head, n in HEADS.items():
        out[head] = keras.layers.Dense(n, activation="softmax", name=head)(feat)
    hidden = keras.layers.Dense(128, activation="relu", name="age_years_hidden")(feat)
    # Regress years/100 (well-scaled for the optimiser), then rescale so the exported output is in years.
    # Start at the typical age with small weights, so the L1 loss does not swamp the classification heads early on.
    unit = keras.layers.Dense(
        1,
        name="age_years_unit",
        kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3),
        bias_initializer=keras.initializers.Constant(0.33),
    )(hidden)
    out["age_years"] = keras.layers.Rescaling(AGE_SCALE, name="age_years")(unit)
    names = OUTPUT_NAMES
    if dex:
        import numpy as np

        out["age_bins"] = keras.layers.Dense(AGE_BINS, activation="softmax", name="age_bins")(feat)
        expect = keras.layers.Dense(
            1,
            use_bias=False,
            trainable=False,
            name="age_years_dex",
            kernel_initializer=keras.initializers.Constant(np.arange(AGE_BINS, dtype="float32").reshape(-1, 1)),
        )
        out["age_years_dex"] = expect(out["age_bins"])
        names = OUTPUT_NAMES + DEX_OUTPUTS
    return keras.Model(inp, {k: out[k] for k in names}, name=f"edge_attr_mnv2_{alpha}_{input_size}")


def freeze_stem(model: Any, until: str = "block_3_expand") -> int:
    """Freeze the backbone's layers before `until` (ImageNet edge/texture filters; the costliest to back-propagate
    at high resolution). Frozen BN layers run in inference mode with their seeded statistics. Returns layers frozen."""
    n = 0
    for layer in backbone_of(model).layers:
        if layer.name == until:
            break
        if layer.weights:
            layer.trainable = False
            n += 1
    return n


def backbone_of(model: Any) -> Any:
    """The nested MobileNetV2 functional model inside `model`."""
    for layer in model.layers:
        if layer.name.startswith("mobilenetv2"):
            return layer
    raise ValueError("model has no MobileNetV2 backbone")


def check_heads(model: Any) -> None:
    """Raise ValueError unless `model` is an image model with the expected named heads and shapes."""
    outputs = model.output if isinstance(model.output, dict) else None
    if outputs is None:
        raise ValueError("model outputs must be a dict with named heads " + ", ".join(OUTPUT_NAMES))
    missing = [h for h in OUTPUT_NAMES if h not in outputs]
    if missing:
        raise ValueError(f"model lacks the heads {', '.join(missing)} (has {', '.join(sorted(outputs))})")
    for head, n in HEADS.items():
        if int(outputs[head].shape[-1]) != n:
            raise ValueError(f"head {head} has {outputs[head].shape[-1]} outputs, expected {n}")
    shape = tuple(model.input.shape) if not isinstance(model.input, (list, dict)) else ()
    if len(shape) != 4 or shape[-1] != 3 or shape[1] != shape[2] or shape[1] is None:
        raise ValueError(f"model input must be a square RGB image (None, S, S, 3), got {shape}")
