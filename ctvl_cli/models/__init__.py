"""Architecture registry: builder names -> "module:function", imported lazily.

To add an architecture, write ``ctvl_cli/models/<family>.py`` with ``build(params) -> nn.Module`` (implementing
:class:`ctvl_cli.models.base.CTModel`) and optionally ``checkpoint_filter(state_dict) -> state_dict``, then add one
line here. Cards name the builder in ``architecture.arch``.
"""

from __future__ import annotations

import importlib

ARCHS: dict[str, str] = {
    "tiny-clip": "ctvl_cli.models.tiny",
    "small-clip": "ctvl_cli.models.small",
    "merlin": "ctvl_cli.models.merlin",
    "ctclip": "ctvl_cli.models.ctclip",
    "resnet18-clip": "ctvl_cli.models.resnet3d",
}


def arch_available(arch: str) -> bool:
    if arch not in ARCHS:
        return False
    return importlib.util.find_spec(ARCHS[arch]) is not None


def arch_module(arch: str):
    from ctvl_cli.errors import UsageError

    if not arch_available(arch):
        raise UsageError(
            f"architecture {arch!r} is not available in this version of ctvl",
            hint="see `ctvl models list` for the models that can run",
        )
    return importlib.import_module(ARCHS[arch])
