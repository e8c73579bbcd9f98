"""The web server (``wanotify run web``): one ASGI app in parts, served by uvicorn."""
