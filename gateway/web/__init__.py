"""The web app: Flask app factory, pages, and the static files of the browser side."""
