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

# What `lora-nb dashboard` serves, shipped inside the package so it works from a plain wheel install:
# notebooks/dashboard.ipynb and the Voila template in voila_templates/ (data-only packages, no __init__.py).
data = {"lora_nb._notebooks": "notebooks", "lora_nb._voila_templates": "voila_templates"}
package_dir.update(data)
package_data = {"lora_nb._notebooks": ["dashboard.ipynb"], "lora_nb._voila_templates": ["lora-nb/*"]}

setup(packages=core + ui + list(data), package_dir=package_dir, package_data=package_data)
