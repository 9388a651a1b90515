"""Package layout only (metadata lives in pyproject.toml).

The top-level ``widgets/`` folder is installed as the import package
``lora_nb.widgets`` so that the core (``lora_nb/``) and the UI stay apart in the
source tree while users import one package.
"""
from setuptools import find_packages, setup

core = find_packages(include=["lora_nb", "lora_nb.*"])
ui = ["lora_nb.widgets"] + ["lora_nb.widgets." + p for p in find_packages("widgets")]
package_dir = {"lora_nb.widgets": "widgets"}
package_dir.update({f"lora_nb.widgets.{p}": f"widgets/{p.replace('.', '/')}" for p in find_packages("widgets")})

setup(packages=core + ui, package_dir=package_dir)
