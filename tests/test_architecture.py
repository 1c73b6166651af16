"""The engine's one-way import rule (README, "Architecture"), checked on the source itself.

Every import of a `birdcore` module counts, at module level or inside a function: a lazy import
still ties two modules together. A module may import its own package and the packages of lower
layers, never a higher layer or a sibling package of its own layer; modules never form a circle.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "birdcore"

# Lowest first. A package sits in one layer; packages sharing a layer must not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("errors",),                        # typed errors: every layer raises them
    ("atomic_io",),                     # crash-safe writes and file locks
    ("settings", "config"),             # the user's settings file; typed dataclass configs and presets
    ("cli_options",),                   # command-line option types, output-path checks, progress bar
    ("audio",),                         # decode/encode, the window rule, the decoded-audio cache
    ("data", "demo"),                   # the BirdCLEF layout, uploads; the embedded demo dataset
    ("evaluation",),                    # metrics, thresholds, threshold curves
    ("features",),                      # mel front end, noise reduction
    ("augment",),                       # waveform / spectrogram / batch augmentations
    ("models",),                        # timm backbones, heads, device choice
    ("pretrained",),                    # BirdNET
    ("archive",),                       # embedding archive: window table, vector shards + index, search
    ("training",),                      # folds, run folders, the loop, the BirdNET head
    ("inference",),                     # windows → scorers → probability tables, ONNX export
    ("submission", "annotation"),       # competition CSV and Kaggle bundle; labels and the queue
    ("ingest",),                        # labelled recordings from anywhere → a dataset (`birdcore import`)
    ("agile",),                         # the active-learning loop on an archive: labels, queue, retrain, exports
    ("selftrain",),                     # self-training: teachers pseudo-label unlabeled soundscapes, rounds of runs
    ("analysis",),                      # what the app's pages show: EDA, run comparison, inspection
    ("cli",),                           # the command line
    ("__main__",),                      # `python -m birdcore`
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> list[tuple[str, int]]:
    """(imported birdcore module, line) for every import in the file, relative ones resolved."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == root.name]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != root.name:
                continue
            for alias in node.names:  # `from birdcore.x import y` may name the module x.y
                sub = f"{target}.{alias.name}"
                is_module = (root.parent / Path(*sub.split("."))).with_suffix(".py").exists() or \
                    (root.parent / Path(*sub.split(".")) / "__init__.py").exists()
                out.append((sub if is_module else target, node.lineno))
    return out


def top_package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(root: Path) -> list[str]:
    """Every import that runs against the layer rule, and every circle of modules."""
    found, graph = [], {}
    for path in sorted(root.rglob("*.py")):
        me = module_name(path, root)
        mine = top_package(me)
        graph[me] = set()
        for target, line in imported_modules(path, root):
            theirs = top_package(target)
            graph[me].add(target)
            if theirs == mine or not theirs:
                continue
            where = f"{path.relative_to(root.parent)}:{line}"
            if mine not in RANK or theirs not in RANK:
                found.append(f"{where}: {me} → {target}: package {mine if mine not in RANK else theirs!r} is in no layer")
            elif RANK[theirs] > RANK[mine]:
                found.append(f"{where}: {me} → {target}: imports a higher layer ({theirs} is above {mine})")
            elif RANK[theirs] == RANK[mine]:
                found.append(f"{where}: {me} → {target}: imports a sibling of its own layer")
    found += [f"circle of imports: {' → '.join(c)}" for c in cycles(graph)]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected group of modules (Tarjan), each closed on its first module.
    A package imported as `birdcore.x` resolves to its `__init__`, which counts like any module."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                out.append(sorted(group) + [sorted(group)[0]])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_engine_imports_flow_one_way():
    found = violations(ENGINE)
    assert not found, "import rule broken (see README, Architecture):\n" + "\n".join(found)


def test_every_engine_package_has_a_layer():
    packages = {p.name for p in ENGINE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in ENGINE.glob("*.py") if p.stem != "__init__"}
    assert sorted((packages | modules) - set(RANK)) == []


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "birdcore"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    for d in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()
    return root


def test_rule_catches_a_lower_layer_importing_a_higher_one(tmp_path):
    root = _plant(tmp_path, {"audio/io.py": "def f():\n    from birdcore.training import loop\n",
                             "training/loop.py": "from birdcore.audio import io\n"})
    found = violations(root)
    assert any("audio/io.py:2" in v and "imports a higher layer (training is above audio)" in v for v in found)
    assert any(v.startswith("circle of imports: birdcore.audio.io → birdcore.training.loop") for v in found)


def test_rule_catches_siblings_and_relative_circles(tmp_path):
    root = _plant(tmp_path, {"data/a.py": "from birdcore.demo import gen\n", "demo/gen.py": "x = 1\n",
                             "inference/p.py": "from .q import y\n", "inference/q.py": "from .p import x\n"})
    found = violations(root)
    assert any("birdcore.data.a → birdcore.demo.gen: imports a sibling of its own layer" in v for v in found)
    assert "circle of imports: birdcore.inference.p → birdcore.inference.q → birdcore.inference.p" in found


def test_rule_accepts_a_downward_import(tmp_path):
    root = _plant(tmp_path, {"training/loop.py": "from birdcore.audio.io import load\nimport birdcore.errors\n",
                             "audio/io.py": "from birdcore.errors import E\n", "errors.py": "class E(Exception): ...\n"})
    assert violations(root) == []


def test_no_private_name_crosses_a_module():
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("birdcore"):
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                assert not names, f"{path}:{node.lineno} imports private {names} from {node.module}"
