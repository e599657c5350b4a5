"""The typed Python API behind the CLI. Functions are keyword-only and raise CtvlError subclasses."""
