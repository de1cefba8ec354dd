"""Which planner answers: the LLM planner when a model endpoint is configured, else the offline one."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the planners import the spec models: only when one is asked for
    from .base import Planner


def llm_configured() -> bool:
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return True
    try:
        from ..config import load_config
    except ImportError:
        return False
    cfg = load_config()
    return bool(cfg.get("api_key") or cfg.get("base_url"))


def get_planner(offline: bool = False, model: str | None = None, fallback: bool = True) -> Planner:
    """``fallback``: whether the LLM planner may hand a request to the offline planner when the model fails."""
    if not offline and llm_configured():
        try:
            from .llm import LLMPlanner
        except ImportError:
            pass
        else:
            return LLMPlanner(model=model, fallback=fallback)
    from .offline import OfflinePlanner

    return OfflinePlanner()
