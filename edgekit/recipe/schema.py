"""The recipe: one YAML file from data to a gated, validated edge artifact.

Sections ``data``, ``model``, ``train``, ``compress``, ``export``, ``validate``, ``gates``
(and ``optimize``: edgekit.optimize.section) parse into frozen dataclasses (``yaml.safe_load``; to/from dict). A missing section takes
its documented defaults; ``compress: null`` (or absent) skips compression, ``gates``
absent skips gating.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from edgekit import vocab
from edgekit.errors import InputError, UsageError
from edgekit.recipe.strict import check_keys, parse_dataclass, shown
from edgekit.validate.config import ValidateConfig

SECTIONS = ["name", "description", "data", "model", "sweep", "train", "compress", "export", "validate",
            "diagnose", "gates", "optimize"]  # diagnose: edgekit.diagnose.config.DiagnoseConfig
RECIPE_HIDDEN = ("probe",)  # ValidateSection fields that are not recipe keys
DEFAULT_TARGETS = (vocab.TFLITE, vocab.TFLITE_INT8)
INT8_TARGETS = {vocab.TFLITE_INT8, vocab.EDGETPU, vocab.MICRO, vocab.ONNX_INT8}


@dataclasses.dataclass(frozen=True)
class DataSection:
    """Which dataset and how it is split (see ``edgekit.data.load_dataset``)."""

    spec: str = "digits"
    seed: int = 0
    test_split: float = 0.2
    val_split: float = 0.1
    limit: int | None = None
    preprocess: str = "unit"  # the pixels the model expects (edgekit.data.preprocess)

    def __post_init__(self) -> None:
        from edgekit.data import SOURCES, parse_spec
        from edgekit.data.preprocess import parse_preprocess

        SOURCES.get(parse_spec(self.spec)[0])
        parse_preprocess(self.preprocess)
        for name in ("test_split", "val_split"):
            v = getattr(self, name)
            if not 0 <= v < 1:
                raise UsageError(f"{name} must be in [0, 1). Received: {v}.")
        if self.limit is not None and self.limit < 10:
            raise UsageError(f"limit must be at least 10 images. Received: {self.limit}.")

    def load(self):
        from edgekit.data import load_dataset

        return load_dataset(self.spec, seed=self.seed, test_split=self.test_split, val_split=self.val_split,
                            limit=self.limit, preprocess=self.preprocess)


@dataclasses.dataclass(frozen=True)
class ModelSection:
    """A zoo model to train (``name``, ``l2``, the model's own ``options`` such as
    ``{alpha: 0.5}`` for mobilenet-v1), or ``path`` to a trained model (no training): a
    tf_keras or Keras 3 .keras/.h5 file, a SavedModel folder (``signature``: which of its
    signatures, default serving_default) or an .onnx file."""

    name: str = "cnn"
    l2: float = 0.0
    path: str | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    signature: str | None = None

    def __post_init__(self) -> None:
        from edgekit.models import MODELS
        from edgekit.models.zoo import check_options

        MODELS.get(self.name)
        object.__setattr__(self, "options", dict(self.options or {}))
        check_options(self.name, self.options)
        if self.l2 < 0:
            raise UsageError(f"l2 must be >= 0. Received: {self.l2}.")


@dataclasses.dataclass(frozen=True)
class SweepSection:
    """Compare model x optimizer x schedule combinations (train options from ``train``)."""

    models: tuple[str, ...] = ("cnn",)
    optimizers: tuple[str, ...] = ("sgd", "momentum", "adam")
    schedules: tuple[str, ...] = ("constant",)
    target_accuracy: float = 0.95

    def __post_init__(self) -> None:
        from edgekit.models import MODELS
        from edgekit.train import OPTIMIZERS, SCHEDULES

        for registry, names in ((MODELS, self.models), (OPTIMIZERS, self.optimizers), (SCHEDULES, self.schedules)):
            if not names:
                raise UsageError(f"Each sweep list needs at least one {registry.kind}.")
            for n in names:
                registry.get(n)
        if not 0 < self.target_accuracy <= 1:
            raise UsageError(f"target_accuracy must be in (0, 1]. Received: {self.target_accuracy}.")


@dataclasses.dataclass(frozen=True)
class ValidateSection(ValidateConfig):
    """How exported artifacts are checked on their runtimes: ``enabled`` and the
    :class:`~edgekit.validate.ValidateConfig` settings (``probe`` is not a recipe key: the export
    stage validates the files it has just written)."""

    probe: bool = False
    enabled: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = {"enabled": self.enabled, **self.settings().to_dict()}
        for k in RECIPE_HIDDEN:
            d.pop(k)
        return d

    def settings(self) -> ValidateConfig:
        """The ValidateConfig the export stage validates with."""
        return ValidateConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ValidateConfig)})


@dataclasses.dataclass(frozen=True)
class ExportSection:
    """Targets to export to, and the exporter's options (``edgekit.export.ExportConfig``)."""

    targets: tuple[str, ...] = DEFAULT_TARGETS
    options: Any = None  # ExportConfig


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str = "recipe"
    description: str = ""
    data: DataSection = DataSection()
    model: ModelSection = ModelSection()
    sweep: SweepSection | None = None
    train: Any = None  # TrainConfig (model/l2 from the model section)
    compress: Any = None  # CompressConfig or None
    export: ExportSection | None = None
    validate: ValidateSection = ValidateSection()
    gates: Any = None  # GateConfig or None
    diagnose: Any = None  # DiagnoseConfig or None
    optimize: Any = None  # OptimizeConfig or None (edgekit.optimize.section)

    # -- dict form -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The fully resolved recipe (every default spelled out)."""
        train = self.train.to_dict() if self.train is not None else None
        if train:
            for k in ("model", "l2", "model_options"):
                train.pop(k, None)
        model = dataclasses.asdict(self.model)
        for k in ("options", "signature"):  # recipes written before these keys resolve as before
            if not model[k]:
                del model[k]
        if model["path"] is not None:  # a trained model: the zoo's name and l2 would only mislead
            model.pop("name")
            model.pop("l2")
        export = None
        if self.export is not None:
            export = {"targets": list(self.export.targets), **self.export.options.to_dict()}
        d = {
            "name": self.name,
            "description": self.description,
            "data": dataclasses.asdict(self.data),
            "model": model,
            "sweep": _plain(dataclasses.asdict(self.sweep)) if self.sweep is not None else None,
            "train": train,
            "compress": _plain(self.compress.to_dict()) if self.compress is not None else None,
            "export": export,
            "validate": self.validate.to_dict(),
            "gates": _plain(self.gates.to_dict()) if self.gates is not None else None,
            **({"diagnose": self.diagnose.to_dict()} if self.diagnose is not None else {}),  # absent: hash unchanged
        }
        if self.optimize is not None:  # only when set: the resolved form of other recipes is unchanged
            d["optimize"] = self.optimize.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Any) -> "Recipe":
        d = check_keys(d, SECTIONS, "recipe")
        for key in ("name", "description"):
            if key in d and not isinstance(d[key], str):
                raise UsageError(f"recipe.{key} must be a string. Received: {shown(d[key])}.")
        data = parse_dataclass(DataSection, d.get("data"), "data")
        model = parse_dataclass(ModelSection, d.get("model"), "model")
        sweep = parse_dataclass(SweepSection, d["sweep"], "sweep") if d.get("sweep") is not None else None
        from edgekit.train import TrainConfig

        train = None
        if model.path is None:
            raw, transfer = _split_transfer(d.get("train"))  # they are checked against the model's name
            train = parse_dataclass(TrainConfig, raw, "train", exclude=("model", "l2", "model_options"))
            try:
                train = train.replace(model=model.name, l2=model.l2, model_options=model.options, **transfer)
            except UsageError as e:
                raise UsageError(f"train: {e}") from None
            data = _backbone_pixels(data, train)
        elif d.get("train"):
            raise UsageError("model.path starts from a trained model, so the train section must be empty. "
                             "Remove one of them.")
        compress = None
        if d.get("compress") is not None:
            from edgekit.compress import CompressConfig

            compress = parse_dataclass(CompressConfig, d["compress"], "compress")
        export = _parse_export(d["export"]) if d.get("export") is not None else None
        validate = parse_dataclass(ValidateSection, d.get("validate"), "validate", exclude=RECIPE_HIDDEN)
        gates = None
        if d.get("gates") is not None:
            from edgekit.gate import GateConfig

            gates = GateConfig.from_dict(check_keys(d["gates"], _gate_keys(), "gates"), path="gates")
        if sweep is not None and train is None:
            raise UsageError("sweep trains from the train section: remove model.path to sweep.")
        from edgekit.optimize.section import parse_optimize

        recipe = cls(d.get("name", "recipe"), d.get("description", ""), data, model, sweep, train, compress, export,
                     validate, gates, diagnose=_parse_diagnose(d.get("diagnose")),
                     optimize=parse_optimize(d.get("optimize"), compress))
        recipe.check_combinations()
        return recipe

    def check_combinations(self) -> None:
        """Errors for sections that cannot work together."""
        targets = set(self.export.targets) if self.export else set()
        if self.gates is not None:
            if not targets:
                raise UsageError("gates need exported artifacts: add an export section with targets.")
            if not self.validate.enabled:
                raise UsageError("gates read validation results: set validate.enabled to true.")
            if self.gates.max_accuracy_drop_vs_trained is not None and self.train is None:
                raise UsageError("gates.max_accuracy_drop_vs_trained compares with the train stage, but model.path "
                                 "skips training: use gates.max_accuracy_drop instead.")
            unknown = [t for t in self.gates.targets if t not in targets]
            if unknown:
                raise UsageError(f"gates.targets names {', '.join(unknown)}, which export.targets does not "
                                 f"build ({', '.join(sorted(targets))}). Add it to export.targets.")
        if self.diagnose is not None and self.diagnose.target_of(sorted(targets)) is None:
            have = ", ".join(sorted(targets)) or "none"
            raise UsageError(f"diagnose reads an exported {self.diagnose.target or 'tflite-int8 or onnx-int8'} "
                             f"artifact: add it to export.targets. Received: targets {have}.")
        if self.compress is not None and self.compress.quantize == "qat" and targets and not targets & INT8_TARGETS:
            raise UsageError("compress.quantize is qat but no export target is int8 "
                             f"({', '.join(sorted(INT8_TARGETS))}): the quantization would be thrown away.")

    def hash(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)


def _split_transfer(section: Any) -> tuple[Any, dict[str, Any]]:
    """The train section without its transfer-learning keys, and those keys (type-checked)."""
    import typing

    from edgekit.recipe.strict import _type_name, matches
    from edgekit.train import TrainConfig

    if not isinstance(section, Mapping):
        return section, {}
    raw = dict(section)
    transfer = {k: raw.pop(k) for k in TrainConfig.TRANSFER_KEYS if k in raw}
    hints = typing.get_type_hints(TrainConfig)
    for k, v in transfer.items():
        if not matches(v, hints[k]):
            raise UsageError(f"train.{k} must be {_type_name(hints[k])}. Received: {shown(v)}.")
    return raw, transfer


def _backbone_pixels(data: DataSection, train: Any) -> DataSection:
    """A backbone model reads its data under its own pixel convention (edgekit.train.transfer):
    ``data.preprocess`` left at unit becomes it, so every stage (compress, export calibration,
    validation) reads the images as the model was trained on them."""
    from edgekit.train.transfer import pixel_convention

    try:
        spec = pixel_convention(train, data.preprocess)
    except UsageError as e:
        raise UsageError(f"data.preprocess: {e}".replace("Drop --preprocess (recipe: data.preprocess)",
                                                          "Drop data.preprocess")) from None
    return data if spec is None else dataclasses.replace(data, preprocess=spec)


def _gate_keys() -> list[str]:
    from edgekit.gate import GateConfig

    return sorted({f.name for f in dataclasses.fields(GateConfig)} | {"target"})


def _parse_export(section: Any) -> ExportSection:
    from edgekit.export import ExportConfig
    from edgekit.export import load_targets
    from edgekit.export.api import resolve_targets

    names = ["targets"] + [f.name for f in dataclasses.fields(ExportConfig)]
    d = check_keys(section, names, "export")
    targets = d.pop("targets", list(DEFAULT_TARGETS))
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str) for t in targets):
        raise UsageError(f"export.targets must be a list of target names. Received: {shown(targets)}.")
    long = [t for t in targets if len(t) > 60]
    if long:
        raise UsageError(f"export.targets: {shown(long[0])} is not a target name. Expected some of: "
                         f"{', '.join(load_targets().names())}.")
    try:
        resolved = resolve_targets(targets)
    except UsageError as e:
        raise UsageError(f"export.targets: {e}") from None
    options = parse_dataclass(ExportConfig, d, "export")
    return ExportSection(tuple(resolved), options)


def _parse_diagnose(section: Any) -> Any:
    if section is None:
        return None
    from edgekit.diagnose.config import DiagnoseConfig

    return parse_dataclass(DiagnoseConfig, section, "diagnose")


def _plain(v: Any) -> Any:
    """Tuples to lists, recursively, so YAML/JSON output is plain."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read a YAML recipe (``yaml.safe_load``) and apply ``key.path=value`` overrides. Relative input
    paths in the file are taken from its folder, those of overrides from the working directory
    (:mod:`edgekit.recipe.paths`)."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"Recipe {str(p)!r} does not exist.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"Recipe {str(p)!r} is not readable: {e}") from None
    except yaml.YAMLError as e:
        raise InputError(f"Recipe {str(p)!r} is not valid YAML{yaml_error_text(e)}") from None
    except RecursionError:
        raise InputError(f"Recipe {str(p)!r} is nested too deeply to be a recipe.") from None
    except ValueError as e:  # a scalar YAML cannot build: a date such as 2024-13-45, an int of 5,000 digits
        raise InputError(f"Recipe {str(p)!r} holds a value YAML cannot read: {_one_line(e)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"Recipe {str(p)!r} must be a YAML mapping of sections. Received: {type(data).__name__}.")
    from edgekit.recipe.paths import resolve_paths

    data = resolve_paths(data, p.parent.absolute())  # the recipe's own paths: from its folder
    data = resolve_paths(apply_overrides(data, overrides), Path.cwd())  # --set paths: from the working directory
    return Recipe.from_dict(data)


def yaml_error_text(e: Exception) -> str:
    """``" at line L, column C: problem"`` of a YAML error, on one line."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None)
    if problem is None and hasattr(e, "position"):  # a ReaderError: a character YAML does not allow
        return f" at character {e.position + 1}: {_one_line(str(e).splitlines()[0])}"
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{at}: {_one_line(problem or e)}"


def _one_line(e: Any) -> str:
    text = " ".join(str(e).split())
    return (text[:200] + "...") if len(text) > 200 else (text or type(e).__name__)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``["train.epochs=1", "export.targets=[tflite]"]`` applied to a copy of ``data``."""
    import copy

    import yaml

    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"An override must look like section.key=value. Received: {item!r}.")
        parts = key.strip().split(".")
        node = out
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise UsageError(f"Override {item!r}: {part!r} is not a section.")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except (yaml.YAMLError, ValueError, RecursionError) as e:
            detail = yaml_error_text(e) if isinstance(e, yaml.YAMLError) else f": {_one_line(e)}"
            raise UsageError(f"Override {item!r}: the value is not valid YAML{detail}") from None
    return out
