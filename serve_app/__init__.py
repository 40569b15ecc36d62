"""raygate: an OpenAI-compatible LLM gateway that runs as a Ray Serve application."""

__version__ = "0.1.0"


def build_app(args):  # noqa: ANN001, ANN201 - re-exported lazily so importing the package stays light
    from .builder import build_app as _build_app

    return _build_app(args)


__all__ = ["__version__", "build_app"]
