"""WSGI entry point: `gunicorn -c python:idp.gunicorn_conf wsgi:app`, or `python wsgi.py` on 127.0.0.1:5000.

The project's `.env` is read first, as the `flask` command reads it, so every entry point runs with
the same settings; variables already in the environment win over the file.
"""
from idp.config import load_env_file

load_env_file()

from idp import create_app  # noqa: E402  (after the .env is loaded)

app = create_app()

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=5000)
