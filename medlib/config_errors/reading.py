"""Reading params: strict, bounded YAML, ``key=value`` overrides, and the checks of a whole config that no single
field can make (combinations that cannot work, settings that would have no effect). Errors are
:class:`medlib.config_errors.ConfigError` lines naming the file, key, value and what was expected."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any, Mapping

import yaml

from medlib.config_errors import ConfigError, config_problem

__all__ = ["MAX_YAML_BYTES", "MAX_YAML_NODES", "NAME_MAX", "check_combinations", "ignored_settings",
           "label_text", "load_yaml", "merge", "parse_overrides", "path_text"]


#: A params file larger than this is refused before parsing (a real one is a few kB).
MAX_YAML_BYTES = 1 << 20
#: Nodes a params file may expand to once aliases are followed (an alias bomb expands to billions).
MAX_YAML_NODES = 100_000
#: YAML 1.2 floats: ``1e-3`` and ``2E+5`` are numbers (YAML 1.1, PyYAML's default, reads them as text).
_FLOAT_12 = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$")


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no tags that build objects) that refuses duplicate keys and reads ``1e-3`` as a
    number, the YAML 1.2 rule every other YAML tool follows.

    Written here rather than taken from a library: ruamel.yaml refuses duplicates but is another parser with its
    own number rules; a subclass of the loader the project already uses changes exactly these two things.
    """

    source = "<yaml>"

    def construct_mapping(self, node, deep=False):  # noqa: D102 - PyYAML's hook
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, typing.Hashable) and key in seen:
                raise ConfigError(f"{self.source}: line {line}: duplicate key {key!r} (first at line {seen[key]}); "
                                  f"expected each key once per section")
            if isinstance(key, typing.Hashable):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def _expanded_size(node, memo: dict[int, int], depth: int = 0) -> int:
    """Nodes of the document once every alias is followed (shared nodes counted each time they are used)."""
    if id(node) in memo:
        return memo[id(node)]
    if depth > 200:
        raise RecursionError
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo, depth + 1) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo, depth + 1) + _expanded_size(v, memo, depth + 1) for k, v in node.value)
    memo[id(node)] = size
    return size


def load_yaml(text: str, source: str) -> Any:
    """Parse params YAML safely and strictly; every problem is a :class:`ConfigError` naming ``source``.

    Safe: no tag builds a Python object. Strict: a key given twice in one mapping is refused (PyYAML keeps the
    last silently); ``1e-3`` is a number. Bounded: a text over ``MAX_YAML_BYTES`` or a document that expands to
    more than ``MAX_YAML_NODES`` nodes through aliases (an alias bomb) is refused before it is built.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise ConfigError(f"{source}: {len(text.encode('utf-8', 'surrogatepass'))} bytes; expected a params file of "
                          f"at most {MAX_YAML_BYTES} bytes")
    loader = _StrictLoader(text)
    loader.source = source
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            size = _expanded_size(node, {})
        except RecursionError:
            size = MAX_YAML_NODES + 1
        if size > MAX_YAML_NODES:
            raise ConfigError(f"{source}: the YAML expands to more than {MAX_YAML_NODES} values through anchors and "
                              f"aliases (an alias bomb?); expected a plain params file")
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(str(err).split())}") from None
    finally:
        loader.dispose()


# ------------------------------------------------------------------------------------------- field checks
#: Longest file or folder name most file systems allow (bytes).
NAME_MAX = 255


def path_text(value: str) -> str:
    """A path typed by the user: no control characters, and no part longer than a file system allows (which
    would fail only when the file is first written, after the work)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise config_problem("a path without control characters")
    long = [part for part in Path(value).parts if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX]
    if long:
        raise config_problem(f"a path whose every part is at most {NAME_MAX} bytes (one part has "
                             f"{len(long[0].encode('utf-8', 'surrogatepass'))})")
    return value


def label_text(value: str) -> str:
    """A display name: trimmed, one line, no control characters (it names a folder and a report column)."""
    text = value.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise config_problem("a name without control characters (tabs, newlines)")
    if len(text) > 100:
        raise config_problem(f"a name of at most 100 characters (got {len(text)})")
    return text


def check_combinations(self: Any) -> None:
    """Settings of a ``StudyConfig`` that validate one by one but cannot work together, refused before any data
    is read (called by its validator)."""
    if self.design == "classifier":
        for i, m in enumerate(self.models):
            if m.spatial_dims != len(self.image.size):
                raise config_problem(f"{len(self.image.size)} to match image.size {list(self.image.size)} "
                                     f"({'2D images' if len(self.image.size) == 2 else '3D volumes'})",
                                     key=f"models[{i}].spatial_dims", value=m.spatial_dims)
    needs_val = self.design == "classifier" or self.threshold.method != "fixed"
    if needs_val and not self.split.split_file and (len(self.split.ratios) < 2 or self.split.ratios[1] <= 0):
        why = ("the threshold is chosen on the validation set" if self.threshold.method != "fixed" else
               "the training epoch is chosen on the validation set")
        raise config_problem(f"a validation fraction > 0 as the second ratio ({why})", key="split.ratios",
                             value=list(self.split.ratios))
    if self.image.crop_to_mask and not self.cohort.mask_column:
        raise config_problem("a mask column (cohort.mask_column) when image.crop_to_mask is true",
                             key="cohort.mask_column", value=None)


# ------------------------------------------------------------------------------------ overrides and effects
def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {part} is not a section")
    node[parts[-1]] = value


def parse_overrides(overrides: typing.Iterable[str]) -> dict[str, Any]:
    """Parse ``key.sub=value`` strings; values are YAML scalars or flow lists (``[64, 64]``).

    Raises:
        ConfigError: an item without ``=``, or a value that is not plain YAML (a tag such as ``!!python/...``).
    """
    data: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.epochs=3")
        key, raw = item.split("=", 1)
        try:
            value = load_yaml(raw, f"override {item!r}")
        except ConfigError as err:
            problem = str(err).split(": ", 1)[-1]
            raise ConfigError(f"override {item!r}: the value is not a YAML scalar or flow list ({problem})") from None
        _set_dotted(data, key.strip(), value)
    return data


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` merged over ``base``, section by section (neither is changed)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out




def _given(data: Mapping[str, Any], section: str) -> set[str]:
    value = data.get(section)
    return set(value) if isinstance(value, Mapping) else set()


def ignored_settings(data: Mapping[str, Any], cfg: Any) -> list[tuple[str, str]]:
    """``(dotted key, why)`` for each setting written in ``data`` (a user's params) that the validated ``cfg``
    (a ``StudyConfig``) would ignore: the combination makes it meaningless."""
    out: list[tuple[str, str]] = []
    image, split, train = _given(data, "image"), _given(data, "split"), _given(data, "train")
    if "margin" in image and not cfg.image.crop_to_mask:
        out.append(("image.margin", "unless image.crop_to_mask is true"))
    if "source_limit" in _given(data, "cohort") and cfg.cohort.source is None:
        out.append(("cohort.source_limit", "without cohort.source"))
    if cfg.split.split_file:
        out += [(f"split.{k}", "with split.split_file (the file gives the sets)")
                for k in ("ratios", "seed", "stratify", "folds", "fold", "group") if k in split]
    if cfg.train.loss == "ce":
        out += [(f"train.{k}", "with train.loss 'ce'") for k in ("focal_gamma", "focal_alpha", "focal_weight")
                if k in train]
    elif cfg.train.loss == "focal" and "focal_weight" in train:
        out.append(("train.focal_weight", "unless train.loss is 'ce+focal'"))
    if cfg.design == "features":
        out += [("models", "in design 'features' (its models are radiomics, deep and fused)")] if cfg.models else []
        why = ("in design 'features' (radiomics reads the images as they are; only image.window, the viewer's and "
               "the duplicate check's window, applies)")
        out += [(f"image.{k}", why) for k in sorted(image - {"window"})]
        out += [(f"explain.{k}", "in design 'features' (Grad-CAM is for CNNs)") for k in sorted(_given(data, "explain"))]
        out += [(f"train.{k}", "in design 'features' (only train.seed, device and threads apply)")
                for k in sorted(train - {"seed", "device", "threads"})]
    else:
        out += [(f"radiomics.{k}", "in design 'classifier'") for k in sorted(_given(data, "radiomics") - {"enabled"})]
    models = data.get("models") if isinstance(data.get("models"), (list, tuple)) else []
    for i, (raw, m) in enumerate(zip(models, cfg.models)):
        columns = m.inputs or cfg.cohort.image_columns
        if isinstance(raw, Mapping) and "multiview" in raw and (len(columns) < 2 or m.spatial_dims == 3):
            out.append((f"models[{i}].multiview", "for a model that reads one 2D image column (or a 3D volume)"))
    return out
