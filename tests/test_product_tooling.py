"""The product never imports the tooling (docs/architecture.md, "Product and tooling").

``flallm_plugin`` (what ``--user-dir flallm_plugin`` loads) must not import ``flallm_tools`` (the synthetic
generator, the experiment runner, the fork helper), neither by an import statement nor by a module name in a
string (``importlib.import_module``, ``python -m``); the tooling may import the product.
"""
import ast
import glob
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRODUCT, TOOLING = "flallm_plugin", "flallm_tools"


def tooling_references(path):
    """[(line, what)] of every import of the tooling, or string naming a tooling module, in ``path``."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value] if node.value == TOOLING or node.value.startswith(TOOLING + ".") else []
        else:
            continue
        found += [(node.lineno, n) for n in names if n == TOOLING or n.startswith(TOOLING + ".")]
    return found


def test_product_does_not_import_tooling():
    files = sorted(glob.glob(os.path.join(REPO, PRODUCT, "**", "*.py"), recursive=True))
    assert len(files) > 30, f"{PRODUCT}/ not found under {REPO}"
    bad = [f"{os.path.relpath(p, REPO)}:{line}: {name}" for p in files for line, name in tooling_references(p)]
    assert not bad, "the product imports the tooling (move the use to flallm_tools/):\n" + "\n".join(bad)


def test_tooling_is_a_package_beside_the_product():
    for sub in ("synthetic", "experiment", "cli"):
        assert os.path.isfile(os.path.join(REPO, TOOLING, sub, "__init__.py")), sub
    assert not glob.glob(os.path.join(REPO, PRODUCT, "**", TOOLING, "**"), recursive=True)
