"""`posekit serve`: pose estimation as an HTTP service with a live browser page (``pip install posekit[serve]``).

``create_app(model=..., index=...)`` builds the ASGI app; ``serve(...)`` runs it with uvicorn on 127.0.0.1.
"""

from posekit.serve.app import create_app, serve

__all__ = ["create_app", "serve"]
