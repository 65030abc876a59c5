"""One blueprint per area of the web app; each module exposes ``bp``."""
