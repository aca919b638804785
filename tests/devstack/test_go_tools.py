"""The Go tools: built by `make tools` before the tests; a test never compiles one."""

from __future__ import annotations

import pytest

from devstack.go_tools import TOOLS, GoTool, ToolSetupError


def test_a_missing_tool_fails_the_test_at_once_instead_of_compiling() -> None:
    missing = GoTool("not-built", "example.com/not-built", "v0.0.0", "a test's stand-in")
    assert not missing.path.exists()
    with pytest.raises(ToolSetupError, match="`make tools` builds it before the tests"):
        missing.binary()
    assert not missing.path.parent.exists()


def test_every_tool_says_why_it_is_built_rather_than_fetched() -> None:
    assert set(TOOLS) == {"kustomize", "kube-score", "promtool", "actionlint"}
    for tool in TOOLS.values():
        assert tool.version.startswith("v")
        assert len(tool.why_built) > 20
    # Prometheus's own build tag leaves out the cloud service-discovery SDKs.
    assert TOOLS["promtool"].tags == "remove_all_sd"
