"""The service with the page at ``/``, for the browser tests.

The same app gunicorn serves (``initlab.web.wsgi``), with the page's blueprint
registered on it, for as long as ``initlab.web.app`` does not register it
itself (the browser tests then use the suite's live server instead).
"""

from __future__ import annotations

from initlab.web.page import blueprint
from initlab.web.wsgi import app

app.register_blueprint(blueprint)
