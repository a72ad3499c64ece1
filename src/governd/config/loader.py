"""Loads ``governd.yaml``: parse -> interpolate ``${ENV}`` -> defaults -> validate.

Every error names its dotted path and the line it sits on, and all of them are
reported at once. Environment variables override the file: ``GOVERND_STORAGE``
replaces ``storage``, ``GOVERND_ADMIN_KEY`` replaces ``admin_key``,
``GOVERND_STATE`` replaces ``state``. Relative paths in a file resolve against
that file's folder.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from governd.config.problems import ConfigError, ConfigProblem, ReferenceProblems
from governd.config.releases import ReleaseConfig
from governd.config.schema import GovernConfig

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Lines:
    """Maps dotted paths of a YAML document to the line each value starts on."""

    def __init__(self) -> None:
        self.lines: dict[tuple[str, ...], int] = {}

    def line_of(self, loc: tuple[str, ...]) -> int | None:
        # Pydantic inserts union tags (e.g. "sim") into locations; skip parts
        # that are not keys of the document.
        best: int | None = self.lines.get(())
        path: tuple[str, ...] = ()
        for part in loc:
            if (*path, part) in self.lines:
                path = (*path, part)
                best = self.lines[path]
        return best


class _Builder:
    """Builds plain data from YAML nodes, recording each path's line and interpolating env."""

    def __init__(self) -> None:
        self.lines = _Lines()
        self.problems: list[ConfigProblem] = []
        self._scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: tuple[str, ...] = ()) -> Any:
        self.lines.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            return {
                str(key.value): self.build(value, (*path, str(key.value)))
                for key, value in node.value
            }
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, str(i))) for i, child in enumerate(node.value)]
        value = self._scalars.construct_object(node, deep=True)
        if isinstance(value, str) and "${" in value:
            return _interpolate(value, path, self.lines, self.problems)
        return value


def _interpolate(
    value: str, path: tuple[str, ...], lines: _Lines, problems: list[ConfigProblem]
) -> str:
    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name, default)
        if found is None:
            problems.append(
                ConfigProblem(
                    ".".join(path),
                    lines.lines.get(path),
                    f"environment variable {name} is not set",
                )
            )
            return ""
        return found

    return _ENV_REF.sub(sub, value)


def parse_config(text: str, source: str = "<string>", base_dir: Path | None = None) -> GovernConfig:
    """Parse and validate config text; raise ``ConfigError`` listing every problem."""
    builder = _Builder()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = builder.build(root) if root is not None else {}
    except yaml.YAMLError as exc:
        raise ConfigError(source, [_yaml_problem(exc, text)]) from None
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigProblem("", 1, "the top level must be a mapping")])
    if builder.problems:
        raise ConfigError(source, builder.problems)
    lines = builder.lines
    _apply_env(data)
    try:
        cfg = GovernConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _problems_of(exc, lines)) from None
    updates: dict[str, Any] = {"storage": resolve_storage(cfg.storage, base_dir)}
    key = cfg.ledger.signing_key
    if key is not None and base_dir is not None and not Path(key).is_absolute():
        updates["ledger"] = cfg.ledger.model_copy(
            update={"signing_key": str((base_dir / key).resolve())}
        )
    logs = cfg.compute.log_dir
    if logs is not None and base_dir is not None and not Path(logs).is_absolute():
        updates["compute"] = cfg.compute.model_copy(
            update={"log_dir": str((base_dir / logs).resolve())}
        )
    if base_dir is not None and cfg.releases:
        updates["releases"] = [_resolved_evidence(r, base_dir) for r in cfg.releases]
    return cfg.model_copy(update=updates)


def _yaml_problem(exc: yaml.YAMLError, text: str) -> ConfigProblem:
    """What YAML refused, at its line (a tag it cannot build, a character it does not allow)."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
    return ConfigProblem("", line, f"not valid YAML: {exc}")


def _resolved_evidence(release: ReleaseConfig, base_dir: Path) -> ReleaseConfig:
    """A release whose evidence files are absolute (relative ones are the config folder's)."""
    evidence = [
        e if Path(e.file).is_absolute() else e.model_copy(update={"file": str(base_dir / e.file)})
        for e in release.gates.evidence
    ]
    gates = release.gates.model_copy(update={"evidence": evidence})
    return release.model_copy(update={"gates": gates})


def _problems_of(exc: ValidationError, lines: _Lines) -> list[ConfigProblem]:
    out = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        found = err.get("ctx", {}).get("error")
        if isinstance(found, ReferenceProblems):  # each at the key it names, below ``loc``
            for path, what in found.problems:
                where = (*_drop_tags(loc), *path)
                out.append(ConfigProblem(".".join(where), lines.line_of(where), what))
            continue
        out.append(ConfigProblem(".".join(_drop_tags(loc)), lines.line_of(loc), err["msg"]))
    return out


def _drop_tags(loc: tuple[str, ...]) -> tuple[str, ...]:
    if len(loc) >= 3 and loc[0] == "upstreams" and loc[2] in ("sim", "openai"):
        return loc[:2] + loc[3:]
    return loc


def _apply_env(data: dict[str, Any]) -> None:
    if os.environ.get("GOVERND_STORAGE"):
        data["storage"] = os.environ["GOVERND_STORAGE"]
    if os.environ.get("GOVERND_ADMIN_KEY"):
        data["admin_key"] = os.environ["GOVERND_ADMIN_KEY"]
    if os.environ.get("GOVERND_STATE"):
        data["state"] = os.environ["GOVERND_STATE"]


def resolve_storage(storage: str, base_dir: Path | None) -> str:
    """Turn a relative SQLite path into an absolute one against the config's folder.

    ``postgresql://`` selects the psycopg driver (the ``postgres`` extra).
    """
    if "://" not in storage:
        storage = f"sqlite:///{storage}"
    if storage.startswith(("postgresql://", "postgres://")):
        storage = "postgresql+psycopg://" + storage.split("://", 1)[1]
    if storage.startswith("sqlite:///") and base_dir is not None:
        path = storage.removeprefix("sqlite:///")
        if path != ":memory:" and not Path(path).is_absolute():
            storage = f"sqlite:///{(base_dir / path).resolve()}"
    return storage


def default_config_text() -> str:
    """The embedded defaults: simulated upstreams, no setup needed."""
    return resources.files("governd.config").joinpath("defaults.yaml").read_text()


def load_config(path: str | Path | None = None) -> GovernConfig:
    """Load ``path``, else ``$GOVERND_CONFIG``, else the embedded defaults."""
    chosen = path or os.environ.get("GOVERND_CONFIG")
    if not chosen:
        return parse_config(default_config_text(), "<embedded defaults>", Path.cwd())
    file = Path(chosen)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(str(file), [ConfigProblem("", None, exc.strerror or str(exc))]) from None
    return parse_config(text, str(file), file.resolve().parent)
