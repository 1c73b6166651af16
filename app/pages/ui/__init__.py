"""Stand-in for the `ui` package (app/ui/) when a page runs on its own; never used by the app itself.

Streamlit puts the folder of the script it was started with on sys.path. `streamlit run app/Home.py`
runs every page with app/ there, so a page's `import ui` finds app/ui/ and this file is never read.
A page started on its own — `AppTest.from_file("app/pages/1_EDA.py")`, `streamlit run
app/pages/1_EDA.py` — gets app/pages/ instead, and `import ui` lands here: app/ goes onto sys.path
(ahead of app/pages/) and the real package takes this module's place in sys.modules, so the page
holds app/ui/ and `from ui import charts` works as under Home.

This is the only copy of that path set-up; pages start with a plain `import ui`. (Not a page:
Streamlit and `ui.list_pages` only take the `*.py` files of app/pages/.)
"""

import importlib
import sys
from pathlib import Path

_APP = str(Path(__file__).resolve().parents[2])
if _APP in sys.path:
    sys.path.remove(_APP)
sys.path.insert(0, _APP)
del sys.modules[__name__]
sys.modules[__name__] = importlib.import_module(__name__)
